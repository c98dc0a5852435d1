// What the kernel side is asked to do: filters, which records to send, ring sizes, attach
// mechanism. Made by the plan (src/plan); the tracer never sees the command line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/attach.h"

namespace tcpconnect {

struct TracerConfig {
  std::uint32_t pid = 0;  // 0 = any
  bool uid_on = false;
  std::uint32_t uid = 0;
  std::uint16_t af = 0;  // TC_AF_INET / TC_AF_INET6, 0 = both
  std::vector<std::uint16_t> ports;
  bool count_mode = false;
  bool count_by_process = false;
  bool count_by_sport = false;    // -c -L/-s: the source port is part of the count key
  bool count_outcomes = false;    // -c --interval: failed handshakes counted per key too
  bool count_handshakes = false;  // --top, --hist: handshake latency per key
  bool count_closes = false;      // --top --lifetime, --hist: lifetime and bytes per key
  AttachMode attach = AttachMode::Auto;
  std::uint32_t ringbuf_bytes = 2u << 20;  // the connection ring (--ringbuf-size)
  // The enrichment ring (DNS answers, command lines); 0: as big as the connection ring, so that
  // --ringbuf-size sizes both.
  std::uint32_t enrich_ringbuf_bytes = 0;
  // Enrichment records per user (uid) the kernel sends: a burst, then a steady rate per second;
  // the rest is counted lost (lost_execs, lost_dns). rate 0: no budget. Root is never budgeted.
  std::uint32_t enrich_burst = 64;
  std::uint32_t enrich_rate = 64;
  bool want_connect = true;  // records to send (see bpf/)
  // Connect records carry their source port: they are sent once it is chosen (after SYN_SENT),
  // not at SYN_SENT itself.
  bool want_sport = true;
  bool want_outcome = false;
  bool failed_only = false;
  bool want_close = false;
  bool want_accept = false;    // accept records
  bool track_accepts = false;  // close records of accepted connections (with want_close)
  std::uint64_t shorter_than_ns = 0;
  std::uint64_t wakeup_interval_ns = 50'000'000;
  // Containers: a network namespace inode (0 = any) and paths given by the
  // user, opened and checked by Tracer::open.
  std::uint32_t netns = 0;
  std::string cgroup;     // cgroup v2 directory
  std::string cgroupmap;  // pinned hash maps, 8-byte keys (bcc)
  std::string mntnsmap;
  // Container filters: user space adds the cgroups they exclude (Tracer::exclude_cgroup).
  bool exclude_cgroups = false;
  bool want_dns = false;     // DNS answer records (-d)
  bool want_parent = false;  // owners' parent PID and name in records
  bool want_exec = false;    // command-line records at exec
  // --metrics: counters and histograms kept in the kernel (no records for them); connections
  // are then followed to their outcome and close whatever records are asked for.
  bool metrics = false;
  bool metrics_by_cgroup = false;  // --metrics-container: the counters' keys have the cgroup id

  bool operator==(const TracerConfig&) const = default;
};

}  // namespace tcpconnect
