#include "enrich/enricher.h"

#include <algorithm>

#include "enrich/dns_parse.h"

namespace tcpconnect {

namespace {
constexpr std::size_t kMaxContainers = 16384;
// Events held at most while runtimes are asked: beyond, the oldest goes on without its names.
constexpr std::size_t kMaxHeld = 65536;

bool allowed(const std::vector<std::string>& list, const std::string& value) {
  return list.empty() || std::find(list.begin(), list.end(), value) != list.end();
}
}  // namespace

Enricher::Enricher(const EnrichConfig& cfg, Emit emit, Exclude exclude, Log log)
    : containers_(cfg.containers),
      metric_containers_(cfg.metric_containers),
      dns_(cfg.dns),
      filter_(cfg.filter),
      wait_ns_(std::uint64_t{cfg.runtime_timeout_ms} * 1'000'000),
      emit_(std::move(emit)),
      exclude_(std::move(exclude)),
      cgroups_(containers_ || metric_containers_ ? cgroup2_mount() : std::nullopt),
      dns_cache_(DnsCacheLimits{cfg.dns_cache_size, cfg.dns_max_age_ns}),
      cmdlines_(cfg.cmdlines),
      processes_(cfg.exec_cache_size) {
  if ((containers_ || metric_containers_) && cfg.container_names) {
    ContainerNamesConfig names;
    names.socket = cfg.runtime_socket;
    names.timeout_ms = cfg.runtime_timeout_ms;
    names_ = std::make_unique<ContainerNames>(names, std::move(log));
  }
}

void Enricher::on_exec(const ExecSample& exec) {
  if (cmdlines_) processes_.on_exec(exec.pid, exec.start_ns, argv_bytes(exec.args, exec.truncated));
}

void Enricher::on_dns(const DnsSample& dns) {
  if (!dns_) return;
  if (auto answer = parse_dns_answer(dns.data, dns.stream))
    dns_cache_.add(dns.netns, dns.pid, *answer, dns.mono_ns);
}

void Enricher::on_cgroup(std::uint64_t cgroup_id, std::uint64_t now_ns) {
  names_of(cgroup_info(cgroup_id), now_ns);  // asks the runtime about its container
}

Enricher::CgroupInfo* Enricher::cgroup_info(std::uint64_t id) {
  if ((!containers_ && !metric_containers_) || !id) return nullptr;
  auto it = cgroup_of_.find(id);
  if (it != cgroup_of_.end()) return &it->second;
  // Read now, at the first event: the cgroup of a container that exits right after its
  // connect is gone by the time a held event is emitted.
  const std::string& path = cgroups_.path_of(id);
  if (path.empty()) return nullptr;
  // Bounded: cgroups come and go (one per container, per systemd unit).
  if (cgroup_of_.size() >= kMaxContainers) cgroup_of_.clear();
  CgroupInfo c{path, container_id_from_cgroup(path), runtime_from_cgroup(path), ""};
  return &cgroup_of_.emplace(id, std::move(c)).first->second;
}

ContainerNames::Answer Enricher::names_of(const CgroupInfo* c, std::uint64_t now_ns) {
  if (!names_ || !c || c->container.empty()) return {};
  return names_->lookup(c->container, c->runtime, now_ns);
}

void Enricher::label_metrics(KernelMetrics& metrics, std::uint64_t now_ns) {
  if (!metric_containers_) return;
  std::erase_if(metrics.counters, [&](MetricCounter& m) {
    if (m.spilled || !m.cgroup_id) return false;
    CgroupInfo* c = cgroup_info(m.cgroup_id);
    if (!c) {
      m.container = "-";  // gone before it could be looked up
      return false;
    }
    if (c->metric_label.empty()) {
      if (c->container.empty()) {
        c->metric_label = "-";
      } else {
        const ContainerNames::Answer a = names_of(c, now_ns);
        if (a.pending) return true;
        c->metric_label =
            a.info && !a.info->name.empty() ? a.info->name : c->container.substr(0, 12);
      }
    }
    m.container = c->metric_label;
    return false;
  });
}

void Enricher::push(ConnectEvent&& ev, std::uint64_t now_ns) {
  const bool wait = names_of(cgroup_info(ev.cgroup_id), now_ns).pending;
  if (held_.empty() && !wait) {
    deliver(ev, now_ns);
    return;
  }
  if (held_.size() >= kMaxHeld) {
    deliver(held_.front().ev, now_ns);
    held_.pop_front();
  }
  held_.push_back({std::move(ev), wait ? now_ns + wait_ns_ : 0});
}

void Enricher::release(std::uint64_t now_ns, bool all) {
  while (!held_.empty()) {
    Held& h = held_.front();
    if (!all && h.until_ns > now_ns && names_of(cgroup_info(h.ev.cgroup_id), now_ns).pending) break;
    deliver(h.ev, now_ns);
    held_.pop_front();
  }
}

void Enricher::deliver(ConnectEvent& ev, std::uint64_t now_ns) {
  const CgroupInfo* c = cgroup_info(ev.cgroup_id);
  // One answer for the whole event: its fields and the filter agree.
  const ContainerNames::Answer names = names_of(c, now_ns);
  enrich(ev, c, names);
  if (filter_.on()) {
    const ContainerInfo* info = ev.container_info;
    const bool keep = info && allowed(filter_.names, info->name) &&
                      allowed(filter_.pods, info->pod) &&
                      allowed(filter_.pod_namespaces, info->pod_namespace);
    if (!keep) {
      // For good only when the answer is final: not a container, or its runtime answered. A
      // runtime that could not be asked may know it next time.
      const bool final =
          c && (c->container.empty() || info || (!names.pending && !names.unreachable));
      if (final && exclude_) exclude_(ev.cgroup_id);
      return;
    }
  }
  emit_(ev);
}

void Enricher::enrich(ConnectEvent& ev, const CgroupInfo* c, const ContainerNames::Answer& names) {
  if (cmdlines_) {
    const ProcessCache::CommandLine cl = processes_.command_line(ev.pid, ev.start_ns);
    ev.cmdline = cl.text;
    ev.argv = cl.args;
    ev.argv_truncated = cl.truncated;
  }
  if (containers_ && ev.cgroup_id) {
    ev.cgroup = c ? std::string_view(c->path) : std::string_view();
    ev.container = c ? std::string_view(c->container) : std::string_view();
    info_ = names.info;
    ev.container_info = info_.get();
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
