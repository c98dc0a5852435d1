// A minimal HTTP client for the runtime tests: one HTTP/1.0 GET to a
// numeric address, with socket timeouts, no library.
#pragma once

#include <netdb.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace rt {

struct HttpResponse {
  int status = 0;  // 0: no response
  std::string headers;
  std::string body;
  std::string error;
};

// One HTTP/1.0 GET (the server closes after the response), to a numeric address.
inline HttpResponse http_get(const std::string& addr, int port, const std::string& target) {
  HttpResponse r;
  addrinfo hints{};
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* ai = nullptr;
  if (getaddrinfo(addr.c_str(), std::to_string(port).c_str(), &hints, &ai) != 0) {
    r.error = "bad address " + addr;
    return r;
  }
  int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  timeval tv{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  const bool connected = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
  freeaddrinfo(ai);
  if (!connected) {
    r.error = std::string("connect: ") + std::strerror(errno);
    close(fd);
    return r;
  }
  const std::string req = "GET " + target + " HTTP/1.0\r\nHost: " + addr + "\r\n\r\n";
  if (write(fd, req.data(), req.size()) != static_cast<ssize_t>(req.size())) {
    r.error = std::string("write: ") + std::strerror(errno);
    close(fd);
    return r;
  }
  std::string raw;
  char buf[8192];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) raw.append(buf, static_cast<size_t>(n));
  if (n < 0) r.error = std::string("read: ") + std::strerror(errno);
  close(fd);
  const auto end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.", 0) != 0 || end == std::string::npos) {
    r.error += " malformed response: " + raw.substr(0, 200);
    return r;
  }
  r.status = std::stoi(raw.substr(9, 3));
  r.headers = raw.substr(0, end + 2);
  r.body = raw.substr(end + 4);
  return r;
}

}  // namespace rt
