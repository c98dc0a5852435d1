// How BPF programs are attached to the kernel's tracepoints (--attach).
#pragma once

namespace tcpconnect {

enum class AttachMode { Auto, TpBtf, RawTp, Tracepoint };

constexpr const char* attach_mode_name(AttachMode m) {
  switch (m) {
    case AttachMode::Auto:
      return "auto";
    case AttachMode::TpBtf:
      return "tp_btf";
    case AttachMode::RawTp:
      return "raw_tp";
    case AttachMode::Tracepoint:
      return "tracepoint";
  }
  return "unknown";
}

}  // namespace tcpconnect
