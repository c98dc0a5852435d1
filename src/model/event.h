// Decoded events: what the rest of user space sees of the kernel's records.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "model/outcome.h"

struct tc_count_stats;

namespace tcpconnect {

using AddrBytes = std::array<std::uint8_t, 16>;

// What a record reports (enum tc_record_type).
enum class EventKind { Connect = 1, Outcome = 2, Close = 3, Accept = 4 };

// What the container runtime says of a container (src/enrich/containers.h). Any field may be
// empty: unknown or not set.
struct ContainerInfo {
  std::string name;           // as `docker ps` shows it
  std::string image;          // as the user named it when creating the container
  std::string pod;            // Kubernetes: pod name
  std::string pod_namespace;  // Kubernetes: the pod's namespace
  std::string k8s_container;  // Kubernetes: the container's name in the pod spec

  bool operator==(const ContainerInfo&) const = default;
};

// One TCP connection event, attributed to the task that opened (connect) or
// accepted it, never to whatever task the kernel ran it on.
struct ConnectEvent {
  EventKind kind = EventKind::Connect;
  bool inbound = false;  // accepted (passive) rather than connected
  Outcome outcome = Outcome::None;
  // Outcome and close records: the handshake did not establish (TC_F_FAILED). A close record
  // of an established connection that later reset is not failed.
  bool failed = false;
  int err = 0;                    // errno of a failure
  std::uint64_t latency_ns = 0;   // SYN to established / failure
  std::uint64_t duration_ns = 0;  // close: from SYN (or accept) to close
  std::uint64_t tx_bytes = 0;     // close: bytes acked by the peer
  std::uint64_t rx_bytes = 0;     // close: bytes received
  std::uint64_t ts_ns = 0;        // wall clock, ns since the Unix epoch
  std::uint64_t mono_ns = 0;      // CLOCK_MONOTONIC as the kernel stamped it
  std::uint32_t pid = 0;
  std::uint32_t tid = 0;
  std::uint32_t uid = 0;
  int ip = 4;  // 4 or 6, as bcc's IP column
  AddrBytes saddr{};
  AddrBytes daddr{};
  std::uint16_t sport = 0;
  std::uint16_t dport = 0;
  std::string comm;             // raw bytes up to the first NUL (may be invalid UTF-8)
  std::uint32_t netns = 0;      // network namespace inode of the socket
  std::uint32_t mntns = 0;      // mount namespace inode of the owner
  std::uint64_t cgroup_id = 0;  // cgroup v2 id of the owner
  std::uint32_t ppid = 0;       // owner's parent, read at the event (0: not read)
  std::string pcomm;            // owner's parent's task name
  std::uint64_t start_ns = 0;   // owner's start time, ns since boot (/proc/PID/stat starttime)

  // Filled by the enrichment stage (src/enrich), when asked for. The views
  // point into the enricher's caches and are valid until its next call.
  std::string_view cgroup;     // path under the cgroup2 mount; "" unknown
  std::string_view container;  // 64-hex container ID; "" none
  // What its runtime said of that container; null when not asked, not answered or unknown.
  const ContainerInfo* container_info = nullptr;
  // -d: bcc's QUERY column ("name", "name (N.NNNms)", "localhost", "No DNS Query").
  std::string query;
  std::string query_name;  // -d: the name alone ("localhost" for loopback), "" unknown
  std::optional<std::uint64_t> query_age_ns;  // -d: how old the DNS answer was
  std::string_view cmdline;  // the owner's command line; "?" unknown, "" not looked up
  // The owner's arguments, each followed by one NUL; empty when unknown or not looked up.
  std::string_view argv;
  bool argv_truncated = false;  // the last argument was cut short (cmdline ends in "...")
};

// A process exec'd (TC_REC_EXEC): its new command line.
struct ExecSample {
  std::uint64_t mono_ns = 0;
  std::uint32_t pid = 0;
  std::uint32_t ppid = 0;
  std::uint64_t start_ns = 0;          // the process's start time, as in ConnectEvent
  bool truncated = false;              // argv was longer than what the kernel copied
  std::span<const std::uint8_t> args;  // NUL-separated; points into the ring buffer
};

// A DNS answer a resolver client read (TC_REC_DNS). `data` points into the
// ring buffer and is valid only while the sample is being handled.
struct DnsSample {
  std::uint64_t mono_ns = 0;
  std::uint32_t pid = 0;
  std::uint32_t tid = 0;
  std::uint32_t netns = 0;
  bool stream = false;  // read from a TCP socket
  std::span<const std::uint8_t> data;
};

// One row of the -c table (bcc: LADDR RADDR RPORT CONNECTS), with when the
// key was first and last seen and the gaps between its connects.
struct CountRow {
  int ip = 4;
  AddrBytes saddr{};
  AddrBytes daddr{};
  std::uint16_t dport = 0;
  std::uint16_t sport = 0;  // -c -L/-s only
  std::uint64_t count = 0;
  std::uint64_t failed = 0;    // of them, failed handshakes (-c --interval)
  std::uint32_t pid = 0;       // --by-process only
  std::string comm;            // --by-process only
  std::uint64_t first_ns = 0;  // wall clock, ns since the epoch; 0 = unknown
  std::uint64_t last_ns = 0;
  std::uint64_t intervals = 0;  // gaps measured (connects - 1)
  double interval_median_s = 0;
  double regular_fraction = 0;
  bool periodic = false;
  // --top and --hist: handshake latencies on the interval scale in us (kIntervalBuckets
  // buckets, model/intervals.h), lifetimes of the closed ones in ms on a log2 scale
  // (TC_LIFE_BUCKETS), their data bytes. Empty when the kernel kept none.
  std::vector<std::uint64_t> latency;
  std::vector<std::uint64_t> lifetime;
  std::uint64_t closed = 0;
  std::uint64_t tx_bytes = 0;
  std::uint64_t rx_bytes = 0;
};

// Adds a tc_count_stats read from the kernel to `row`.
void add_count_stats(const tc_count_stats& stats, CountRow& row);

// --metrics-container: the cgroup id of a TC_REC_CGROUP record, nullopt when malformed.
std::optional<std::uint64_t> decode_cgroup(std::span<const std::uint8_t> sample);

// The record type of a ring-buffer sample (enum tc_record_type), 0 if too short.
int record_type(std::span<const std::uint8_t> sample);

// Decodes a TC_REC_DNS sample; nullopt when malformed.
std::optional<DnsSample> decode_dns(std::span<const std::uint8_t> sample);

// Decodes a TC_REC_EXEC sample; nullopt when malformed.
std::optional<ExecSample> decode_exec(std::span<const std::uint8_t> sample);

// Decodes one ring-buffer sample. Returns nullopt for records that are
// too short or of an unknown type. `mono_to_wall_ns` is added to the
// kernel's monotonic stamp to get wall-clock time.
std::optional<ConnectEvent> decode_connect(std::span<const std::uint8_t> sample,
                                           std::int64_t mono_to_wall_ns);

// Decodes a count-map entry (raw tc_count_key bytes + value).
std::optional<CountRow> decode_count(std::span<const std::uint8_t> key, std::uint64_t value);

// Decodes a count-map key and its tc_count_value (connects, first/last seen,
// interval histogram).
std::optional<CountRow> decode_count(std::span<const std::uint8_t> key,
                                     std::span<const std::uint8_t> value,
                                     std::int64_t mono_to_wall_ns);

// RFC 5952 text of an address (inet_ntop): "10.0.0.1", "2001:db8::1",
// "::1", "::ffff:10.0.0.1".
std::string format_address(int ip, const AddrBytes& bytes);

// HH:MM:SS, the local time of a wall-clock stamp (ns since the epoch): bcc's -T TIME column.
std::string format_hms(std::uint64_t wall_ns);

// Sorts count rows most frequent first; ties are ordered by IP version,
// addresses and ports so the output is deterministic.
void sort_count_rows(std::vector<CountRow>& rows);

}  // namespace tcpconnect
