#include "enrich/enricher.h"

#include "enrich/dns_parse.h"

namespace tcpconnect {

Enricher::Enricher(const EnrichConfig& cfg)
    : containers_(cfg.containers),
      dns_(cfg.dns),
      cgroups_(containers_ ? cgroup2_mount() : std::nullopt),
      dns_cache_(DnsCacheLimits{cfg.dns_cache_size, cfg.dns_max_age_ns}),
      cmdlines_(cfg.cmdlines),
      processes_(cfg.exec_cache_size) {}

void Enricher::on_exec(const ExecSample& exec) {
  if (cmdlines_) processes_.on_exec(exec.pid, exec.start_ns, argv_bytes(exec.args, exec.truncated));
}

void Enricher::on_dns(const DnsSample& dns) {
  if (!dns_) return;
  if (auto answer = parse_dns_answer(dns.data, dns.stream))
    dns_cache_.add(dns.netns, dns.pid, *answer, dns.mono_ns);
}

namespace {
constexpr std::size_t kMaxContainers = 16384;
}  // namespace

void Enricher::enrich(ConnectEvent& ev) {
  if (cmdlines_) {
    const ProcessCache::CommandLine c = processes_.command_line(ev.pid, ev.start_ns);
    ev.cmdline = c.text;
    ev.argv = c.args;
    ev.argv_truncated = c.truncated;
  }
  if (containers_ && ev.cgroup_id) {
    ev.cgroup = cgroups_.path_of(ev.cgroup_id);
    auto it = container_of_.find(ev.cgroup_id);
    if (it == container_of_.end() && !ev.cgroup.empty()) {
      // Bounded: cgroups come and go (one per container, per systemd unit).
      if (container_of_.size() >= kMaxContainers) container_of_.clear();
      it = container_of_.emplace(ev.cgroup_id, container_id_from_cgroup(ev.cgroup)).first;
    }
    ev.container = it != container_of_.end() ? std::string_view(it->second) : std::string_view();
  }
  // The name a destination was resolved from; meaningless for accepted connections.
  if (dns_ && !ev.inbound) {
    auto hit = dns_cache_.lookup(ev.netns, ev.pid, ev.ip, ev.daddr, ev.mono_ns);
    ev.query = dns_query_text(hit, ev.ip, ev.daddr);
    if (hit) {
      ev.query_name = std::move(hit->name);
      ev.query_age_ns = hit->age_ns;
    } else {
      ev.query_name = is_loopback(ev.ip, ev.daddr) ? "localhost" : "";
      ev.query_age_ns.reset();
    }
  }
}

}  // namespace tcpconnect
