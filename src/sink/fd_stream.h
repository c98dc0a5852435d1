// A buffered std::streambuf over a file descriptor. Unlike std::cout it
// reports EPIPE to the caller (so `tcpconnect | head -3` can exit quietly)
// and flushes only when told to, once per batch of events.
//
// By default a stalled reader holds the writer back. In never-block mode
// (metrics must keep counting whatever stdout does) writes take only what
// the descriptor accepts at once and the rest waits in the buffer, which the
// caller keeps bounded by checking backlog() before each record.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <csignal>
#include <cstring>
#include <streambuf>
#include <string>
#include <vector>

namespace tcpconnect {

class FdStreamBuf : public std::streambuf {
 public:
  explicit FdStreamBuf(int fd, std::size_t size = 1 << 16) : fd_(fd), buf_(size) {
    setp(buf_.data(), buf_.data() + buf_.size());
  }
  ~FdStreamBuf() override {
    set_never_block(false);
    drain();
  }
  // Never-block mode on or off. A pipe, FIFO or terminal is reopened with
  // O_NONBLOCK (a file description of its own: the flag of the shared one is
  // not ours to change); a socket is sent to with MSG_DONTWAIT; a regular
  // file never blocks for long.
  void set_never_block(bool on) {
    if (on == never_block_) return;
    if (wfd_ != fd_) ::close(wfd_);
    wfd_ = fd_;
    socket_ = false;
    never_block_ = on;
    if (!on) return;
    struct stat st {};
    if (::fstat(fd_, &st) != 0) return;
    if (S_ISSOCK(st.st_mode)) {
      socket_ = true;
    } else if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) {
      const std::string self = "/proc/self/fd/" + std::to_string(fd_);
      const int nb = ::open(self.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (nb >= 0) wfd_ = nb;
    }
  }
  // Bytes written by the caller and not yet taken by the descriptor.
  std::size_t backlog() const { return static_cast<std::size_t>(pptr() - pbase()); }
  // A write blocked on a stalled reader gives up (error EINTR) once a signal
  // has set *flag, so a stop request is not held up by the reader.
  void stop_when(const volatile std::sig_atomic_t* flag) { stop_ = flag; }
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
    if (pptr() == epptr()) {
      // Never-block mode and the reader takes nothing: keep the record whole.
      const auto used = static_cast<int>(backlog());
      buf_.resize(buf_.size() * 2);
      setp(buf_.data(), buf_.data() + buf_.size());
      pbump(used);
    }
    if (!traits_type::eq_int_type(ch, traits_type::eof())) {
      *pptr() = traits_type::to_char_type(ch);
      pbump(1);
    }
    return traits_type::not_eof(ch);
  }

 private:
  // Writes what the descriptor takes now; the rest moves to the buffer's start.
  bool drain_without_blocking() {
    const char* p = pbase();
    while (p < pptr() && error_ == 0) {
      const auto len = static_cast<std::size_t>(pptr() - p);
      const ssize_t n =
          socket_ ? ::send(wfd_, p, len, MSG_DONTWAIT | MSG_NOSIGNAL) : ::write(wfd_, p, len);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        error_ = errno;
        break;
      }
      p += n;
    }
    const auto left = static_cast<int>(pptr() - p);
    std::memmove(buf_.data(), p, static_cast<std::size_t>(left));
    setp(buf_.data(), buf_.data() + buf_.size());
    pbump(left);
    return error_ == 0;
  }
  bool drain() {
    if (never_block_) return drain_without_blocking();
    const char* p = pbase();
    while (p < pptr() && error_ == 0) {
      std::size_t len = static_cast<std::size_t>(pptr() - p);
      if (stopping()) {
        // Once stopping, never block for long: the reader gets a grace period to make room,
        // then what is left is given up. Writes of at most PIPE_BUF fit once poll() says a
        // pipe is writable.
        pollfd out{fd_, POLLOUT, 0};
        if (::poll(&out, 1, kStopGraceMs) != 1 || (out.revents & POLLOUT) == 0) {
          error_ = EINTR;
          break;
        }
        len = std::min<std::size_t>(len, PIPE_BUF);
      }
      ssize_t n = ::write(fd_, p, len);
      if (n < 0) {
        if (errno == EINTR) continue;  // stopping() is checked before the next write
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          // A non-blocking stdout (the flag is shared with whoever opened it): wait for room
          // as a blocking write would, so a slow reader holds us back and the kernel counts
          // what does not fit in the ring, instead of the output failing.
          pollfd out{fd_, POLLOUT, 0};
          ::poll(&out, 1, stopping() ? 0 : -1);
          continue;
        }
        error_ = errno;
        break;
      }
      p += n;
    }
    setp(buf_.data(), buf_.data() + buf_.size());
    return error_ == 0;
  }
  static constexpr int kStopGraceMs = 1000;
  bool stopping() const { return stop_ && *stop_; }
  int fd_;
  int wfd_ = fd_;  // where never-block mode writes
  bool socket_ = false;
  bool never_block_ = false;
  int error_ = 0;
  const volatile std::sig_atomic_t* stop_ = nullptr;
  std::vector<char> buf_;
};

}  // namespace tcpconnect
