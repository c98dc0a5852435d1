// How a connection attempt ended, and how each output spells it.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>

namespace tcpconnect {

// How a connection attempt ended (enum tc_outcome).
enum class Outcome { None = 0, Established, Refused, TimedOut, Reset, Error, Aborted };

// The spellings of one outcome. The text OUTCOME column and the JSON "outcome" field print
// `name`; the Prometheus `outcome` label is `label` (label values have no spaces and are
// lower case). An Error with an errno is spelled by the errno instead: its name (errno_name(),
// "ENETUNREACH") in `name`'s place, the same in lower case ("enetunreach") in `label`'s.
struct OutcomeSpelling {
  Outcome outcome;
  std::string_view name;
  std::string_view label;
};

// One row per Outcome, in the enum's order.
inline constexpr std::array<OutcomeSpelling, 7> kOutcomeSpellings{{
    {Outcome::None, "", "unknown"},
    {Outcome::Established, "established", "established"},
    {Outcome::Refused, "refused", "refused"},
    {Outcome::TimedOut, "timed out", "timed_out"},
    {Outcome::Reset, "reset", "reset"},
    {Outcome::Error, "error", "error"},  // an Error without an errno
    {Outcome::Aborted, "aborted", "aborted"},
}};

// The text and JSON spelling: "established", "refused", "timed out", "reset", "aborted", or the
// errno name ("ENETUNREACH") of an Error; "" for Outcome::None.
std::string outcome_name(Outcome o, int err);

// The Prometheus label: "established", "refused", "timed_out", "reset", "aborted", or the
// errno name in lower case ("enetunreach") of an Error; "unknown" for Outcome::None.
std::string outcome_label(Outcome o, int err);

// Errno name ("ECONNREFUSED"), or "E<number>" when unknown; "" for 0.
std::string errno_name(int err);

}  // namespace tcpconnect
