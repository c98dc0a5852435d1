// Runs a load loop on N threads for a fixed time: shared by the bench load
// generators.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <thread>
#include <vector>

namespace bench {

// Starts `threads` copies of loop(stop, result), sets `stop` after `seconds`,
// joins them and returns the elapsed seconds. results[i] belongs to thread i.
template <typename Result, typename Loop>
double run_workers(int threads, double seconds, std::vector<Result>& results, Loop loop) {
  std::atomic<bool> stop{false};
  results.assign(static_cast<std::size_t>(threads), Result{});
  std::vector<std::thread> workers;
  workers.reserve(results.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (auto& r : results) workers.emplace_back([&stop, &r, &loop] { loop(stop, r); });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop.store(true);
  for (auto& th : workers) th.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace bench
