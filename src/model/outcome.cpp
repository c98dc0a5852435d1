#include "model/outcome.h"

#include <cstring>
#include <string>

namespace tcpconnect {
namespace {

constexpr bool rows_in_enum_order() {
  for (std::size_t i = 0; i < kOutcomeSpellings.size(); ++i) {
    if (static_cast<std::size_t>(kOutcomeSpellings[i].outcome) != i) return false;
  }
  return true;
}
static_assert(rows_in_enum_order(), "kOutcomeSpellings: one row per Outcome, in enum order");

// The row of `o`; None's for a value outside the enum.
const OutcomeSpelling& spelling(Outcome o) {
  const auto i = static_cast<std::size_t>(o);
  return kOutcomeSpellings[i < kOutcomeSpellings.size() ? i : 0];
}

}  // namespace

std::string errno_name(int err) {
  if (err == 0) return {};
  if (const char* name = strerrorname_np(err)) return name;
  return "E" + std::to_string(err);
}

std::string outcome_name(Outcome o, int err) {
  if (o == Outcome::Error && err != 0) return errno_name(err);
  return std::string(spelling(o).name);
}

std::string outcome_label(Outcome o, int err) {
  if (o == Outcome::Error && err != 0) {
    std::string name = errno_name(err);
    for (char& c : name)
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return name;
  }
  return std::string(spelling(o).label);
}

}  // namespace tcpconnect
