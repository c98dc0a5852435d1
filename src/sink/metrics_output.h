// The Prometheus output: the Sink interface over a Metrics registry, so that the session feeds
// it from the same loop as the text and JSON outputs: what the kernel counted, the losses and
// when the kernel was read. The registry is rendered on each scrape
// by the metrics server (sink/metrics_server.h).
#pragma once

#include <cstdint>
#include <vector>

#include "sink/metrics.h"
#include "sink/sink.h"

namespace tcpconnect {

class MetricsOutput final : public Sink {
 public:
  explicit MetricsOutput(Metrics& metrics) : metrics_(metrics) {}

  void start(const StartInfo& info) override {
    metrics_.set_info(info.version, info.attach_method);
  }
  // Connections are counted in the kernel (kernel_metrics()), not from records.
  void connect(const ConnectEvent& /*ev*/) override {}
  void kernel_metrics(const KernelMetrics& k) override { metrics_.update(k); }
  void lost(std::uint64_t /*delta*/, std::uint64_t total) override { metrics_.set_lost(total); }
  void lost_enrichment(Enrichment kind, std::uint64_t /*delta*/, std::uint64_t total) override {
    (kind == Enrichment::Exec ? lost_execs_ : lost_dns_) = total;
    metrics_.set_lost_enrichment(lost_execs_, lost_dns_);
  }
  void polled(std::uint64_t wall_ns) override { metrics_.set_last_read(wall_ns); }
  void counts(std::vector<CountRow> /*rows*/) override {}
  void count_interval(const std::vector<CountRow>& /*rows*/, std::uint64_t /*wall_ns*/) override {}
  void finish(const FinishInfo& /*info*/) override {}

 private:
  Metrics& metrics_;
  std::uint64_t lost_execs_ = 0, lost_dns_ = 0;
};

}  // namespace tcpconnect
