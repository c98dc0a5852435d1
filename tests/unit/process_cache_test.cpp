#include "enrich/process_cache.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace tcpconnect {
namespace {

std::span<const std::uint8_t> bytes(const std::string& s) {
  return std::span(reinterpret_cast<const std::uint8_t*>(s.data()), s.size());
}

TEST(ProcessCache, JoinArgv) {
  EXPECT_EQ(join_argv(bytes(std::string("python3\0-m\0http.server\0", 23)), false),
            "python3 -m http.server");
  EXPECT_EQ(join_argv(bytes(std::string("sh\0-c\0echo hi", 13)), false), "sh -c echo hi");
  EXPECT_EQ(join_argv(bytes(std::string("long\0arg", 8)), true), "long arg...");
  EXPECT_EQ(join_argv(bytes(""), false), "");
}

TEST(ProcessCache, ExecWinsAndIsBounded) {
  ProcessCache c(2, "/nonexistent");
  c.on_exec(10, "a");
  c.on_exec(11, "b");
  EXPECT_EQ(c.cmdline(10), "a");  // 10 is now the most recent
  c.on_exec(12, "c");             // evicts 11
  EXPECT_EQ(c.size(), 2u);
  EXPECT_EQ(c.cmdline(11), "?");
  EXPECT_EQ(c.cmdline(10), "a");
  c.on_exec(10, "a2");  // exec again: replaced
  EXPECT_EQ(c.cmdline(10), "a2");
}

TEST(ProcessCache, FallsBackToProc) {
  ProcessCache c(8);
  const auto self = c.cmdline(static_cast<std::uint32_t>(getpid()));
  EXPECT_NE(self, "?");
  EXPECT_NE(self.find("unit_tests"), std::string_view::npos) << self;

  const auto dir = std::filesystem::temp_directory_path() / ("tc-proc-" + std::to_string(getpid()));
  std::filesystem::create_directories(dir / "42");
  std::ofstream(dir / "42" / "cmdline", std::ios::binary) << std::string("nc\0-z\0host\0", 11);
  std::filesystem::create_directories(dir / "43");
  std::ofstream(dir / "43" / "cmdline", std::ios::binary).close();  // kernel thread: empty
  ProcessCache fake(8, dir.string());
  EXPECT_EQ(fake.cmdline(42), "nc -z host");
  EXPECT_EQ(fake.cmdline(43), "?");
  EXPECT_EQ(fake.cmdline(44), "?");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace tcpconnect
