// Serves a Metrics registry over HTTP on a background thread, with fixed
// bounds on what a client can make it hold or wait for (metrics_server.cpp).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sink/metrics.h"

namespace tcpconnect {

class MetricsServer {
 public:
  // Binds addr:port ("127.0.0.1", "::1", "0.0.0.0"; port 0 = any free port)
  // and serves GET /metrics (and a small index at /). Returns nullptr with a
  // one-line reason in `err` when the address cannot be bound.
  static std::unique_ptr<MetricsServer> start(const Metrics& metrics, const std::string& addr,
                                              std::uint16_t port, std::string& err);
  // The two halves of start(): bind() claims the address without starting a
  // thread (connections queue in the backlog); serve() starts the thread.
  // Between them the caller can drop privileges that threads would inherit.
  static std::unique_ptr<MetricsServer> bind(const Metrics& metrics, const std::string& addr,
                                             std::uint16_t port, std::string& err);
  void serve();
  ~MetricsServer();  // stops serving and joins the thread, without waiting for any client
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  std::uint16_t port() const;  // the bound port

 private:
  MetricsServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace tcpconnect
