#include "enrich/process_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace tcpconnect {
namespace {

using namespace std::string_literals;

std::span<const std::uint8_t> bytes(const std::string& s) {
  return std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

// One argument, as an exec record brings it.
ArgvBytes arg(const std::string& s) { return argv_bytes(bytes(s + '\0'), false); }

TEST(ProcessCache, JoinArgv) {
  EXPECT_EQ(join_argv(bytes(std::string("python3\0-m\0http.server\0", 23)), false),
            "python3 -m http.server");
  EXPECT_EQ(join_argv(bytes(std::string("sh\0-c\0echo hi", 13)), false), "sh -c echo hi");
  EXPECT_EQ(join_argv(bytes(std::string("long\0arg", 8)), true), "long arg...");
  EXPECT_EQ(join_argv(bytes(""), false), "");
}

TEST(ProcessCache, JoinArgvCutsAtTheBound) {
  const std::string longest(kCmdlineMax, 'x');
  EXPECT_EQ(join_argv(bytes(longest), false), longest);
  EXPECT_EQ(join_argv(bytes(longest + "y"), false), longest + "...");
  // 6 MB of argv (what a forked child of a big command shows in /proc) stays 515 bytes.
  const std::string huge(6 << 20, 'z');
  EXPECT_EQ(join_argv(bytes(huge), false).size(), kCmdlineMax + 3);
}

// Argument boundaries are kept: each argument ends in one NUL.
TEST(ProcessCache, ArgvBytes) {
  auto a = argv_bytes(bytes("sh\0-c\0echo hi\0"s), false);
  EXPECT_EQ(a.args, "sh\0-c\0echo hi\0"s);
  EXPECT_FALSE(a.truncated);
  // An empty last argument stays.
  a = argv_bytes(bytes(std::string("a\0\0", 3)), false);
  EXPECT_EQ(a.args, std::string("a\0\0", 3));
  // Cut short by the kernel: the partial argument gets its NUL.
  a = argv_bytes(bytes(std::string("long\0ar", 7)), true);
  EXPECT_EQ(a.args, std::string("long\0ar\0", 8));
  EXPECT_TRUE(a.truncated);
  // Cut here.
  a = argv_bytes(bytes(std::string(kCmdlineMax + 5, 'x')), false);
  EXPECT_EQ(a.args, std::string(kCmdlineMax, 'x') + '\0');
  EXPECT_TRUE(a.truncated);
  // Exactly the bound, no NUL: not cut, and not shown as cut.
  a = argv_bytes(bytes(std::string(kCmdlineMax, 'y')), false);
  EXPECT_FALSE(a.truncated);
  ProcessCache c(2, "/nonexistent");
  c.on_exec(1, 0, a);
  EXPECT_EQ(c.cmdline(1, 0), std::string(kCmdlineMax, 'y'));
}

TEST(ProcessCache, CommandLineKeepsTheArguments) {
  ProcessCache c(2, "/nonexistent");
  c.on_exec(10, 0, argv_bytes(bytes("prog\0a b\0\0"s), false));
  const auto cl = c.command_line(10, 0);
  EXPECT_EQ(cl.text, "prog a b");  // trailing empty arguments do not show
  EXPECT_EQ(cl.args, "prog\0a b\0\0"s);
  EXPECT_FALSE(cl.truncated);
  c.on_exec(11, 0, argv_bytes(bytes(std::string("x\0yy", 4)), true));
  const auto cut = c.command_line(11, 0);
  EXPECT_EQ(cut.text, "x yy...");
  EXPECT_EQ(cut.args, std::string("x\0yy\0", 5));
  EXPECT_TRUE(cut.truncated);
  const auto unknown = c.command_line(12, 0);
  EXPECT_EQ(unknown.text, "?");
  EXPECT_TRUE(unknown.args.empty());
}

TEST(ProcessCache, ExecWinsAndIsBounded) {
  ProcessCache c(2, "/nonexistent");
  c.on_exec(10, 0, arg("a"));
  c.on_exec(11, 0, arg("b"));
  EXPECT_EQ(c.cmdline(10, 0), "a");  // 10 is now the most recent
  c.on_exec(12, 0, arg("c"));        // evicts 11
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.cmdline(11, 0), "?");
  EXPECT_EQ(c.cmdline(10, 0), "a");
  c.on_exec(10, 0, arg("a2"));  // exec again: replaced
  EXPECT_EQ(c.cmdline(10, 0), "a2");
  EXPECT_EQ(c.bytes(), 5u);  // "a2\0" and "c\0"
}

TEST(ProcessCache, BoundedInBytes) {
  ProcessCache c(4, "/nonexistent");
  for (std::uint32_t pid = 1; pid <= 100; ++pid) c.on_exec(pid, 0, arg(std::string(1 << 20, 'a')));
  EXPECT_EQ(c.size(), 4u);
  EXPECT_EQ(c.bytes(), 4 * (kCmdlineMax + 1));
  EXPECT_EQ(c.cmdline(100, 0).substr(kCmdlineMax), "...");
}

TEST(ProcessCache, ReusedPidDoesNotInheritTheCommandLine) {
  ProcessCache c(8, "/nonexistent");
  c.on_exec(10, 1'000'000'000, arg("old --secret"));
  EXPECT_EQ(c.cmdline(10, 1'000'000'000), "old --secret");
  // Same PID, another start time: another process, and /proc knows nothing of it.
  EXPECT_EQ(c.cmdline(10, 2'000'000'000), "?");
  EXPECT_EQ(c.size(), 0u);
  c.on_exec(10, 2'000'000'000, arg("new"));
  EXPECT_EQ(c.cmdline(10, 2'000'000'000), "new");
}

// /PID/stat as the kernel writes it, with `ticks` as field 22 (starttime) and a
// command name that holds the separators a parser could trip on.
void write_stat(const std::filesystem::path& dir, long long ticks) {
  std::ofstream(dir / "stat") << "42 (a) b ) c) S 1 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 "
                              << ticks << " 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0\n";
}

TEST(ProcessCache, FallsBackToProc) {
  ProcessCache c(8);
  const auto self = c.cmdline(static_cast<std::uint32_t>(getpid()), 0);
  EXPECT_NE(self, "?");
  EXPECT_NE(self.find("unit_tests"), std::string_view::npos) << self;

  const auto dir = std::filesystem::temp_directory_path() / ("tc-proc-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "42");
  std::ofstream(dir / "42" / "cmdline", std::ios::binary) << std::string("nc\0-z\0host\0", 11);
  std::filesystem::create_directories(dir / "43");
  std::ofstream(dir / "43" / "cmdline", std::ios::binary).close();  // kernel thread: empty
  ProcessCache fake(8, dir.string());
  EXPECT_EQ(fake.cmdline(42, 0), "nc -z host");
  EXPECT_EQ(fake.command_line(42, 0).args, std::string("nc\0-z\0host\0", 11));
  EXPECT_EQ(fake.cmdline(43, 0), "?");
  EXPECT_EQ(fake.cmdline(44, 0), "?");
  std::filesystem::remove_all(dir);
}

TEST(ProcessCache, ProcFallbackChecksTheStartTimeAndCaps) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("tc-proc-start-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "42");
  std::string argv = std::string("big\0", 4) + std::string(6 << 20, 'x') + std::string("\0", 1);
  std::ofstream(dir / "42" / "cmdline", std::ios::binary) << argv;
  write_stat(dir / "42", 12345);
  const long hz = sysconf(_SC_CLK_TCK);
  const std::uint64_t start_ns = 12345ull * (1'000'000'000 / hz);

  ProcessCache c(8, dir.string());
  // Another start time: the PID's current owner is not the process that connected.
  EXPECT_EQ(c.cmdline(42, start_ns + 1'000'000'000), "?");
  const auto line = c.cmdline(42, start_ns + 1);  // same tick
  EXPECT_EQ(line.size(), kCmdlineMax + 3);
  EXPECT_EQ(line.substr(0, 5), "big x");
  EXPECT_EQ(line.substr(kCmdlineMax), "...");
  EXPECT_LE(c.bytes(), kCmdlineMax + 1);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tcpconnect
