// A buffered std::streambuf over a file descriptor. Unlike std::cout it
// reports EPIPE to the caller (so `tcpconnect | head -3` can exit quietly)
// and flushes only when told to, once per batch of events.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <streambuf>
#include <vector>

namespace tcpconnect {

class FdStreamBuf : public std::streambuf {
 public:
  explicit FdStreamBuf(int fd, std::size_t size = 1 << 16) : fd_(fd), buf_(size) {
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  ~FdStreamBuf() override { sync(); }
  // errno of the first failed write (EPIPE when the reader went away), or 0.
  int error() const { return error_; }
  // True when fd is a pipe or socket whose reader has gone away, even if
  // nothing was written since: `tcpconnect | head -3` must end with head.
  bool reader_gone() {
    pollfd p{fd_, 0, 0};
    if (::poll(&p, 1, 0) == 1 && (p.revents & (POLLERR | POLLHUP))) {
      if (error_ == 0) error_ = EPIPE;
      return true;
    }
    return false;
  }

 protected:
  int sync() override { return drain() ? 0 : -1; }
  int_type overflow(int_type ch) override {
    if (!drain()) return traits_type::eof();
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

 private:
  bool drain() {
    const char* p = pbase();
    while (p < pptr() && error_ == 0) {
      ssize_t n = ::write(fd_, p, static_cast<std::size_t>(pptr() - p));
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = errno;
        break;
      }
      p += n;
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return error_ == 0;
  }
  int fd_;
  int error_ = 0;
  std::vector<char> buf_;
};

}  // namespace tcpconnect
