#include "sink/json_sink.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "plan/plan.h"

namespace tcpconnect {
namespace {

// What the plan gives the per-event output for these options.
OutputConfig lines_config(const Options& o) { return make_plan(o).lines; }

using nlohmann::json;

AddrBytes addr(int ip, const char* text) {
  AddrBytes a{};
  EXPECT_EQ(inet_pton(ip == 4 ? AF_INET : AF_INET6, text, a.data()), 1) << text;
  return a;
}

ConnectEvent sample_event() {
  ConnectEvent ev;
  ev.ts_ns = 1'700'000'000'123'456'789ULL;
  ev.mono_ns = 123'456'789;
  ev.pid = 1234;
  ev.tid = 1240;
  ev.uid = 1000;
  ev.comm = "curl";
  ev.ip = 4;
  ev.saddr = addr(4, "10.0.0.1");
  ev.sport = 40000;
  ev.daddr = addr(4, "93.184.216.34");
  ev.dport = 80;
  return ev;
}

// Sets TZ for the life of the object (and tzset()s), then puts back what was there.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    if (const char* old = std::getenv("TZ")) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (old_) {
      setenv("TZ", old_->c_str(), 1);
    } else {
      unsetenv("TZ");
    }
    tzset();
  }
  ScopedTz(const ScopedTz&) = delete;
  ScopedTz& operator=(const ScopedTz&) = delete;

 private:
  std::optional<std::string> old_;
};

// RFC 3339 local time of `ns` computed another way: strftime's %z, with a colon put in.
std::string rfc3339(std::uint64_t ns) {
  const auto t = static_cast<std::time_t>(ns / 1'000'000'000);
  std::tm tm{};
  localtime_r(&t, &tm);
  char date[64], zone[16];
  std::strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  std::strftime(zone, sizeof zone, "%z", &tm);
  const std::string z(zone);
  return fmt::format("{}.{:06}{}:{}", date, (ns / 1000) % 1'000'000, z.substr(0, 3), z.substr(3));
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> lines;
  std::istringstream in(s);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  EXPECT_TRUE(s.empty() || s.back() == '\n');
  return lines;
}

// Parses every line; each must be one complete JSON object.
std::vector<json> parse_lines(const std::string& s) {
  std::vector<json> out;
  for (const auto& line : lines_of(s)) {
    EXPECT_NO_THROW(out.push_back(json::parse(line))) << line;
    if (!out.empty()) {
      EXPECT_TRUE(out.back().is_object()) << line;
    }
  }
  return out;
}

std::vector<std::string> keys_in_order(const std::string& line) {
  std::vector<std::string> keys;
  const auto j = nlohmann::ordered_json::parse(line);
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  return keys;
}

TEST(JsonSink, StartRecord) {
  ScopedTz utc("UTC");
  std::ostringstream out;
  Options o;
  o.json = true;
  JsonSink sink(lines_config(o), out);
  sink.start(StartInfo{"0.1.0", "tp_btf", 1'700'000'000'000'000'000ULL});
  EXPECT_EQ(out.str(), R"({"type":"start","version":5,"tool_version":"0.1.0","attach":"tp_btf",)"
                       R"("ts_ns":1700000000000000000,"time":"2023-11-14T22:13:20.000000+00:00",)"
                       R"("mode":"connect"})"
                       "\n");

  std::ostringstream out2;
  o.count = true;
  JsonSink count_sink(lines_config(o), out2);
  count_sink.start(StartInfo{"0.1.0", "raw_tp", 5});
  const auto recs = parse_lines(out2.str());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["mode"], "count");
  EXPECT_EQ(recs[0]["attach"], "raw_tp");
  EXPECT_EQ(recs[0]["version"], 5);
}

TEST(JsonSink, ConnectRecordIPv4) {
  ScopedTz utc("UTC");
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  const ConnectEvent ev = sample_event();
  sink.connect(ev);
  EXPECT_EQ(out.str(),
            R"({"type":"connect","ts_ns":1700000000123456789,)"
            R"("time":"2023-11-14T22:13:20.123456+00:00","pid":1234,"tid":1240,"uid":1000,)"
            R"("comm":"curl","af":4,"saddr":"10.0.0.1","sport":40000,"daddr":"93.184.216.34",)"
            R"("dport":80,"dir":"out","netns":0,"mntns":0,"cgroup_id":0,"cgroup":"",)"
            R"("container":"","container_name":null,"image":null,"pod":null,"pod_namespace":null,)"
            R"("container_k8s":null,"ppid":0,"pcomm":"","cmdline":"?","argv":null})"
            "\n");
  const auto recs = parse_lines(out.str());
  ASSERT_EQ(recs.size(), 1u);
  const json& j = recs[0];
  EXPECT_EQ(j["type"], "connect");
  EXPECT_EQ(j["ts_ns"].get<std::uint64_t>(), ev.ts_ns);
  EXPECT_EQ(j["pid"].get<std::uint32_t>(), ev.pid);
  EXPECT_EQ(j["tid"].get<std::uint32_t>(), ev.tid);
  EXPECT_EQ(j["uid"].get<std::uint32_t>(), ev.uid);
  EXPECT_EQ(j["comm"], ev.comm);
  EXPECT_EQ(j["af"], 4);
  EXPECT_EQ(j["saddr"], "10.0.0.1");
  EXPECT_EQ(j["sport"], ev.sport);
  EXPECT_EQ(j["daddr"], "93.184.216.34");
  EXPECT_EQ(j["dport"], ev.dport);
}

TEST(JsonSink, ConnectRecordIPv6FieldOrder) {
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  ConnectEvent ev = sample_event();
  ev.ip = 6;
  ev.saddr = addr(6, "fe80::1234:5678:9abc:def0");
  ev.daddr = addr(6, "::ffff:10.1.2.3");
  ev.uid = 0;
  ev.comm = "";
  sink.connect(ev);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 1u);
  const std::vector<std::string> want_keys = {"type",
                                              "ts_ns",
                                              "time",
                                              "pid",
                                              "tid",
                                              "uid",
                                              "comm",
                                              "af",
                                              "saddr",
                                              "sport",
                                              "daddr",
                                              "dport",
                                              "dir",
                                              "netns",
                                              "mntns",
                                              "cgroup_id",
                                              "cgroup",
                                              "container",
                                              "container_name",
                                              "image",
                                              "pod",
                                              "pod_namespace",
                                              "container_k8s",
                                              "ppid",
                                              "pcomm",
                                              "cmdline",
                                              "argv"};
  EXPECT_EQ(keys_in_order(lines[0]), want_keys);
  const json j = json::parse(lines[0]);
  EXPECT_EQ(j["af"], 6);
  EXPECT_EQ(j["saddr"], "fe80::1234:5678:9abc:def0");
  EXPECT_EQ(j["daddr"], "::ffff:10.1.2.3");
  EXPECT_EQ(j["comm"], "");
  EXPECT_EQ(j["uid"], 0);
}

TEST(JsonSink, CommWithHostileBytesIsValidJson) {
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  ConnectEvent ev = sample_event();
  ev.comm = std::string("a\x01\"\\\xff\xc3", 6);
  sink.connect(ev);
  ev.comm = std::string("\n\x7f\xc3\xa9\xe2\x82", 6);  // valid é, truncated 3-byte sequence
  sink.connect(ev);
  const auto recs = parse_lines(out.str());
  ASSERT_EQ(recs.size(), 2u);
  // Control bytes escaped, quote and backslash escaped, invalid UTF-8 -> U+FFFD.
  EXPECT_EQ(recs[0]["comm"], "a\x01\"\\\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(recs[1]["comm"], "\n\x7f\xc3\xa9\xEF\xBF\xBD");
  EXPECT_NE(out.str().find(R"("comm":"a\u0001\"\\)"), std::string::npos) << out.str();
  EXPECT_EQ(recs[0]["pid"], 1234);
}

// The connect fast path must be byte-identical to building the record as an
// ordered_json and dumping it with error_handler_t::replace.
TEST(JsonSink, ConnectMatchesOrderedJsonDump) {
  std::vector<ConnectEvent> evs;
  // What a runtime may name a container: any bytes (labels are set by whoever runs it).
  std::vector<ContainerInfo> infos;
  infos.reserve(16);
  const std::string comms[] = {"curl",
                               "",
                               "0123456789abcdef",
                               std::string("a\x01\"\\\xff\xc3", 6),
                               std::string("\t\r\n\b\f\x7f", 6),
                               "caf\xc3\xa9 \xe2\x82\xac",
                               "\xed\xa0\x80\xf4\x90\x80\x80",
                               "curl"};
  std::uint32_t n = 0;
  for (const auto& comm : comms) {
    ConnectEvent ev = sample_event();
    ev.comm = comm;
    ev.pid = n++ % 2 ? 0 : 0xffffffffu;
    ev.tid = n * 7;
    ev.uid = n % 3 ? 65534 : 0;
    ev.ts_ns = n % 2 ? 0 : ~0ULL;
    ev.sport = static_cast<std::uint16_t>(n % 2 ? 0 : 65535);
    ev.dport = static_cast<std::uint16_t>(n * 1000);
    ev.netns = 4026531840u + n;
    ev.ppid = n * 3;
    ev.pcomm = comm + "p";
    ev.cmdline = n % 2 ? std::string_view("python3 -c \"print('\\x01')\" \x01\xff") : "";
    ev.argv = n % 2 ? std::string_view("python3\0-c\0\"print('\\x01')\" \x01\xff\0", 30) : "";
    ev.argv_truncated = n % 4 == 1;
    ev.mntns = n % 2 ? 0 : 0xffffffffu;
    ev.cgroup_id = n % 2 ? ~0ULL : 1;
    ev.cgroup = n % 2 ? std::string_view("/system.slice/a\"b\\c\x01.scope") : "";
    ev.container =
        n % 2 ? std::string_view("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef")
              : "";
    if (n % 2) {
      infos.push_back({comm + "-web", "localhost/img:1\x1b[2J", n % 4 == 1 ? "pod\"x" : "",
                       n % 4 == 1 ? "shop" : "", n % 4 == 1 ? comm : ""});
      ev.container_info = &infos.back();
      ev.ip = 6;
      ev.saddr = addr(6, "2001:db8:85a3:1234:5678:8a2e:370:7334");
      ev.daddr = addr(6, "::");
    }
    evs.push_back(ev);
  }
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  std::string want;
  for (const auto& ev : evs) {
    sink.connect(ev);
    nlohmann::ordered_json j;
    j["type"] = "connect";
    j["ts_ns"] = ev.ts_ns;
    j["time"] = rfc3339(ev.ts_ns);
    j["pid"] = ev.pid;
    j["tid"] = ev.tid;
    j["uid"] = ev.uid;
    j["comm"] = ev.comm;
    j["af"] = ev.ip;
    j["saddr"] = format_address(ev.ip, ev.saddr);
    j["sport"] = ev.sport;
    j["daddr"] = format_address(ev.ip, ev.daddr);
    j["dport"] = ev.dport;
    j["dir"] = "out";
    j["netns"] = ev.netns;
    j["mntns"] = ev.mntns;
    j["cgroup_id"] = ev.cgroup_id;
    j["cgroup"] = std::string(ev.cgroup);
    j["container"] = std::string(ev.container);
    const ContainerInfo* info = ev.container_info;
    for (const auto& [key, value] :
         {std::pair{"container_name", info ? info->name : ""},
          std::pair{"image", info ? info->image : ""}, std::pair{"pod", info ? info->pod : ""},
          std::pair{"pod_namespace", info ? info->pod_namespace : ""},
          std::pair{"container_k8s", info ? info->k8s_container : ""}}) {
      if (value.empty()) {
        j[key] = nullptr;
      } else {
        j[key] = value;
      }
    }
    j["ppid"] = ev.ppid;
    j["pcomm"] = ev.pcomm;
    j["cmdline"] = ev.cmdline.empty() ? std::string("?") : std::string(ev.cmdline);
    if (ev.argv.empty()) {
      j["argv"] = nullptr;
    } else {
      j["argv"] = {
          "python3", "-c",
          ev.argv_truncated ? "\"print('\\x01')\" \x01\xff..." : "\"print('\\x01')\" \x01\xff"};
    }
    want += j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
  }
  EXPECT_EQ(out.str(), want);
  EXPECT_EQ(parse_lines(out.str()).size(), evs.size());
}

TEST(JsonSink, DnsQueryFields) {
  Options o;
  o.dns = true;
  std::ostringstream out;
  JsonSink sink(lines_config(o), out);
  ConnectEvent ev = sample_event();
  ev.query = "api.example.com (250.400ms)";
  ev.query_name = "api.example.com";
  ev.query_age_ns = 250'400'000;
  sink.connect(ev);
  ev.query = ev.query_name = "localhost";
  ev.query_age_ns.reset();
  sink.connect(ev);
  ev.query = ev.query_name = "";
  sink.connect(ev);
  ev.query = ev.query_name = "we\\ird\"name";
  ev.query_age_ns = 1;
  sink.connect(ev);
  const auto recs = parse_lines(out.str());
  ASSERT_EQ(recs.size(), 4u);
  EXPECT_EQ(recs[0]["query"], "api.example.com");
  EXPECT_EQ(recs[0]["query_age_ms"], 250);
  EXPECT_EQ(recs[1]["query"], "localhost");
  EXPECT_TRUE(recs[1]["query_age_ms"].is_null());
  EXPECT_TRUE(recs[2]["query"].is_null());
  EXPECT_TRUE(recs[2]["query_age_ms"].is_null());
  EXPECT_EQ(recs[3]["query"], "we\\ird\"name");
  EXPECT_EQ(recs[3]["query_age_ms"], 0);

  // Without -d there are no query fields at all.
  std::ostringstream plain;
  JsonSink(lines_config(Options{}), plain).connect(ev);
  EXPECT_FALSE(parse_lines(plain.str())[0].contains("query"));
}

TEST(JsonSink, LostGoesToOut) {
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  sink.lost(3, 17);
  EXPECT_EQ(out.str(), "{\"type\":\"lost\",\"count\":3,\"total\":17}\n");
}

// Enrichment losses have their own record type: summing the "lost" records still gives the
// connection records lost.
TEST(JsonSink, LostEnrichmentRecords) {
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  sink.lost_enrichment(Enrichment::Exec, 5, 12);
  sink.lost_enrichment(Enrichment::Dns, 1, 1);
  EXPECT_EQ(out.str(),
            "{\"type\":\"lost_enrichment\",\"kind\":\"exec\",\"count\":5,\"total\":12}\n"
            "{\"type\":\"lost_enrichment\",\"kind\":\"dns\",\"count\":1,\"total\":1}\n");
}

CountRow row(int ip, const char* s, const char* d, std::uint16_t port, std::uint64_t count) {
  CountRow r;
  r.ip = ip;
  r.saddr = addr(ip, s);
  r.daddr = addr(ip, d);
  r.dport = port;
  r.count = count;
  return r;
}

TEST(JsonSink, CountRecordsSorted) {
  std::ostringstream out;
  Options o;
  o.count = true;
  JsonSink sink(lines_config(o), out);
  sink.counts({row(4, "10.0.0.1", "10.0.0.3", 443, 5), row(6, "::1", "2001:db8::1", 22, 9),
               row(4, "10.0.0.1", "10.0.0.2", 80, 5)});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(
      lines[0],
      R"({"type":"count","af":6,"saddr":"::1","daddr":"2001:db8::1","dport":22,)"
      R"("connects":9,"first_ns":0,"last_ns":0,"intervals":0,"interval_median_s":0.0,"regular_fraction":0.0,"periodic":false})");
  EXPECT_EQ(
      lines[1],
      R"({"type":"count","af":4,"saddr":"10.0.0.1","daddr":"10.0.0.2","dport":80,)"
      R"("connects":5,"first_ns":0,"last_ns":0,"intervals":0,"interval_median_s":0.0,"regular_fraction":0.0,"periodic":false})");
  EXPECT_EQ(
      lines[2],
      R"({"type":"count","af":4,"saddr":"10.0.0.1","daddr":"10.0.0.3","dport":443,)"
      R"("connects":5,"first_ns":0,"last_ns":0,"intervals":0,"interval_median_s":0.0,"regular_fraction":0.0,"periodic":false})");
  for (const auto& j : parse_lines(out.str())) EXPECT_EQ(j["type"], "count");
}

// -c -L: the source port is part of the key, and each record says it, before "dport".
TEST(JsonSink, CountRecordsWithSport) {
  std::ostringstream out;
  Options o;
  o.count = true;
  o.lport = true;
  o.by_process = true;
  JsonSink sink(lines_config(o), out);
  CountRow a = row(4, "10.0.0.1", "10.0.0.2", 80, 2);
  a.sport = 40001;
  a.pid = 7;
  a.comm = "curl";
  CountRow b = a;
  b.sport = 40000;
  sink.counts({a, b});
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0],
            R"({"type":"count","af":4,"saddr":"10.0.0.1","daddr":"10.0.0.2","pid":7,"comm":"curl",)"
            R"("sport":40000,"dport":80,"connects":2,"first_ns":0,"last_ns":0,"intervals":0,)"
            R"("interval_median_s":0.0,"regular_fraction":0.0,"periodic":false})");
  EXPECT_EQ(parse_lines(out.str())[1]["sport"], 40001);
}

TEST(JsonSink, CountRecordsWithoutLportHaveNoSport) {
  std::ostringstream out;
  Options o;
  o.count = true;
  JsonSink sink(lines_config(o), out);
  CountRow r = row(4, "10.0.0.1", "10.0.0.2", 80, 1);
  r.sport = 40000;
  sink.counts({r});
  for (const auto& j : parse_lines(out.str())) EXPECT_FALSE(j.contains("sport"));
}

TEST(JsonSink, EndRecord) {
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  sink.finish(FinishInfo{4, 1000, 7, 2, 3, 40, 50, 6});
  EXPECT_EQ(out.str(),
            "{\"type\":\"end\",\"events\":1000,\"lost\":4,\"skipped\":7,\"lost_execs\":2,"
            "\"lost_dns\":3,\"execs\":40,\"dns_answers\":50,\"untracked\":6}\n");
}

TEST(JsonSink, FullSessionOneObjectPerLine) {
  std::ostringstream out, err;
  Options o;
  o.json = true;
  auto sink = make_sink(lines_config(o), out, err);
  sink->start(StartInfo{"0.1.0", "tp_btf", 1});
  sink->connect(sample_event());
  sink->lost(1, 1);
  sink->connect(sample_event());
  sink->finish(FinishInfo{1, 2});
  const auto recs = parse_lines(out.str());
  ASSERT_EQ(recs.size(), 5u);
  const std::vector<std::string> types = {"start", "connect", "lost", "connect", "end"};
  for (std::size_t i = 0; i < recs.size(); ++i) EXPECT_EQ(recs[i]["type"], types[i]);
  EXPECT_EQ(err.str(), "");
}

// "time": local time at that instant, with its UTC offset, exact to the microsecond of ts_ns.
TEST(JsonSink, TimeHasTheLocalOffset) {
  struct Case {
    const char* tz;
    std::uint64_t ts_ns;
    const char* want;
  };
  const Case cases[] = {
      {"UTC", 1'700'000'000'123'456'789ULL, "2023-11-14T22:13:20.123456+00:00"},
      {"UTC", 1'700'000'000'000'000'999ULL, "2023-11-14T22:13:20.000000+00:00"},
      {"UTC", 0, "1970-01-01T00:00:00.000000+00:00"},
      // POSIX TZ strings: no tz database needed. US Eastern, winter and summer.
      {"EST5EDT,M3.2.0,M11.1.0", 1'700'000'000'999'999'999ULL, "2023-11-14T17:13:20.999999-05:00"},
      {"EST5EDT,M3.2.0,M11.1.0", 1'690'000'000'000'001'000ULL, "2023-07-22T00:26:40.000001-04:00"},
      {"<+0530>-5:30", 1'700'000'000'123'456'789ULL, "2023-11-15T03:43:20.123456+05:30"},
      {"<-0330>3:30", 1'700'000'000'123'456'789ULL, "2023-11-14T18:43:20.123456-03:30"},
      // Across midnight and a year.
      {"<+14>-14", 1'703'980'800'500'000'000ULL, "2023-12-31T14:00:00.500000+14:00"},
      {"<-12>12", 1'704'067'199'000'000'000ULL, "2023-12-31T11:59:59.000000-12:00"},
  };
  for (const Case& c : cases) {
    ScopedTz tz(c.tz);
    std::ostringstream out;
    JsonSink sink(lines_config(Options{}), out);
    ConnectEvent ev = sample_event();
    ev.ts_ns = c.ts_ns;
    sink.connect(ev);
    sink.start(StartInfo{"0.1.0", "tp_btf", c.ts_ns});
    const auto recs = parse_lines(out.str());
    ASSERT_EQ(recs.size(), 2u);
    EXPECT_EQ(recs[0]["time"], c.want) << c.tz;
    EXPECT_EQ(recs[1]["time"], c.want) << c.tz;
    EXPECT_EQ(rfc3339(c.ts_ns), c.want) << c.tz;
  }
}

// "argv": the arguments one by one, escaped as every string is; null when unknown.
TEST(JsonSink, ArgvKeepsArgumentBoundaries) {
  std::ostringstream out;
  JsonSink sink(lines_config(Options{}), out);
  ConnectEvent ev = sample_event();
  ev.cmdline = "conn_helper a b  \xff\"x\\";
  ev.argv = std::string_view("conn_helper\0a b\0\0\xff\"x\\\0", 22);
  sink.connect(ev);
  ev.argv_truncated = true;  // cut short: the last argument ends in "...", as cmdline does
  ev.cmdline = "conn_helper a b  \xff\"x\\...";
  sink.connect(ev);
  ev.argv = {};
  ev.cmdline = "?";
  sink.connect(ev);
  const auto lines = lines_of(out.str());
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[0].find(R"("argv":["conn_helper","a b","",")"
                          "\xef\xbf\xbd"
                          R"(\"x\\"])"),
            std::string::npos)
      << lines[0];
  EXPECT_NE(lines[1].find(R"("argv":["conn_helper","a b","",")"
                          "\xef\xbf\xbd"
                          R"(\"x\\..."])"),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find(R"("cmdline":"?","argv":null)"), std::string::npos) << lines[2];
  const auto recs = parse_lines(out.str());
  EXPECT_EQ(recs[0]["argv"], json({"conn_helper", "a b", "", "\xef\xbf\xbd\"x\\"}));
  EXPECT_TRUE(recs[2]["argv"].is_null());
}

}  // namespace
}  // namespace tcpconnect

namespace tcpconnect {
namespace {

TEST(JsonSink, CloseRecordCarriesLifecycleFields) {
  Options o;
  o.json = true;
  o.lifetime = true;
  std::ostringstream out, err;
  auto sink = make_sink(lines_config(o), out, err);
  ConnectEvent ev;
  ev.kind = EventKind::Close;
  ev.inbound = true;
  ev.outcome = Outcome::Established;
  ev.latency_ns = 0;
  ev.duration_ns = 300'000'000;
  ev.tx_bytes = 5;
  ev.rx_bytes = 7;
  ev.comm = "srv";
  sink->connect(ev);
  auto j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["type"], "close");
  EXPECT_EQ(j["dir"], "in");
  EXPECT_EQ(j["outcome"], "established");
  EXPECT_EQ(j["error"], "");
  EXPECT_EQ(j["duration_ns"], 300'000'000u);
  EXPECT_EQ(j["tx_bytes"], 5u);
  EXPECT_EQ(j["rx_bytes"], 7u);
}

TEST(JsonSink, OutcomeRecordNamesTheErrno) {
  Options o;
  o.json = true;
  o.failed = true;
  std::ostringstream out, err;
  auto sink = make_sink(lines_config(o), out, err);
  ConnectEvent ev;
  ev.kind = EventKind::Outcome;
  ev.outcome = Outcome::Error;
  ev.err = 101;
  sink->connect(ev);
  auto j = nlohmann::json::parse(out.str());
  EXPECT_EQ(j["type"], "outcome");
  EXPECT_EQ(j["outcome"], "ENETUNREACH");
  EXPECT_EQ(j["error"], "ENETUNREACH");
  EXPECT_FALSE(j.contains("duration_ns"));
}

// JSON is for programs: it keeps the exact value of every outside text
// (no \xHH escaping as in the text output). C0 controls become \u00XX, and
// C1 and bidi controls, valid UTF-8, travel as themselves; only bytes that
// are not UTF-8 at all are lost (U+FFFD), as docs/json-schema.md says.
TEST(JsonSink, HostileTextKeepsItsExactValue) {
  Options o;
  o.dns = true;
  std::ostringstream out;
  JsonSink sink(lines_config(o), out);
  ConnectEvent ev = sample_event();
  ev.comm =
      "\xc2\x9b"
      "2J\xe2\x80\xae";
  ev.pcomm = "\x1b]0;x\x07";
  const std::string cgroup =
      "/t/\xe2\x81\xa6\xc2\x9d"
      "c";
  ev.cgroup = cgroup;
  ev.cmdline =
      "sh \xc2\x9b"
      "2J \xe2\x80\xae \x9b \x1b]0;x\x07";
  ev.query = ev.query_name = "a\xe2\x80\x8f.example";
  sink.connect(ev);
  const auto recs = parse_lines(out.str());
  ASSERT_EQ(recs.size(), 1u);
  EXPECT_EQ(recs[0]["comm"],
            "\xc2\x9b"
            "2J\xe2\x80\xae");
  EXPECT_EQ(recs[0]["pcomm"], "\x1b]0;x\x07");
  EXPECT_EQ(recs[0]["cgroup"], cgroup);
  EXPECT_EQ(recs[0]["cmdline"],
            "sh \xc2\x9b"
            "2J \xe2\x80\xae \xef\xbf\xbd \x1b]0;x\x07");
  EXPECT_EQ(recs[0]["query"], "a\xe2\x80\x8f.example");
  // No raw C0 byte on the line: ESC and BEL are written as escapes.
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find('\x07'), std::string::npos) << out.str();
  EXPECT_NE(out.str().find(R"("pcomm":"\u001b]0;x\u0007")"), std::string::npos) << out.str();
}

}  // namespace
}  // namespace tcpconnect
