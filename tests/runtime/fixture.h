// Base fixture of the runtime tests: they need root and BPF, and under CI a
// missing requirement fails instead of skipping.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "harness.h"

namespace rt {

class RuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string missing = missing_requirements();
    if (!missing.empty()) {
      // CI must exercise the kernel: a skip there would hide a broken build.
      if (std::getenv("CI")) FAIL() << "runtime tests cannot run in CI: " << missing;
      GTEST_SKIP() << missing;
    }
  }

  // Starts tcpconnect and waits for a stdout line starting with `ready`.
  std::unique_ptr<Tracer> start(std::vector<std::string> args, const std::string& ready) {
    return start_tool("tcpconnect", std::move(args), ready);
  }
  // The same, run as another tool of the family ("tcpaccept", "tcplife", "tcpconnlat").
  std::unique_ptr<Tracer> start_tool(const std::string& tool, std::vector<std::string> args,
                                     const std::string& ready) {
    auto t = std::make_unique<Tracer>(tool_path(tool), std::move(args));
    EXPECT_TRUE(t->wait_ready(ready))
        << "tracer not ready; stderr: " << t->err() << " stdout: " << t->out();
    return t;
  }

  // Stops the tracer (expecting a clean exit) and returns its JSON records
  // of the given type.
  std::vector<nlohmann::json> records(Tracer& t, const std::string& type) {
    EXPECT_EQ(t.stop(), 0) << t.err();
    std::vector<nlohmann::json> out;
    for (auto& line : t.out_lines()) {
      auto j = nlohmann::json::parse(line);
      if (j["type"] == type) out.push_back(j);
    }
    return out;
  }
};

inline constexpr const char* kJsonStart = "{\"type\":\"start\"";

inline std::vector<nlohmann::json> for_pid(const std::vector<nlohmann::json>& recs, int pid) {
  std::vector<nlohmann::json> out;
  for (auto& j : recs)
    if (j["pid"] == pid) out.push_back(j);
  return out;
}

}  // namespace rt
