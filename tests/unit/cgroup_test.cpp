#include "enrich/cgroup.h"

#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>
#include <string>

namespace tcpconnect {
namespace {

const std::string kId = "3f4b1c2d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f809";
const std::string kId2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

struct IdCase {
  std::string path;
  std::string want;
};

TEST(CgroupTest, ContainerIdFromCgroup) {
  const std::string upper = "3F4B1C2D5E6F708192A3B4C5D6E7F8091A2B3C4D5E6F708192A3B4C5D6E7F809";
  const IdCase cases[] = {
      // docker, systemd and cgroupfs drivers
      {"/system.slice/docker-" + kId + ".scope", kId},
      {"/docker/" + kId, kId},
      {"/system.slice/docker-" + kId + ".scope/init", kId},
      {"/system.slice/docker-" + kId + ".scope/init.scope", kId},
      // containerd / CRI
      {"/system.slice/cri-containerd-" + kId + ".scope", kId},
      {"/kubepods.slice/kubepods-burstable.slice/"
       "kubepods-burstable-pod1b2c3d4e_5f60_7182_93a4_b5c6d7e8f901.slice/cri-containerd-" +
           kId + ".scope",
       kId},
      {"/kubepods/besteffort/pod1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901/" + kId, kId},
      {"/kubepods/pod1b2c3d4e-5f60-7182-93a4-b5c6d7e8f901/" + kId, kId},
      {"/k8s.io/" + kId, kId},
      // CRI-O; its conmon monitor is not the container
      {"/kubepods.slice/kubepods-pod1.slice/crio-" + kId + ".scope", kId},
      {"/kubepods.slice/kubepods-pod1.slice/crio-conmon-" + kId + ".scope", ""},
      // podman / libpod
      {"/machine.slice/libpod-" + kId + ".scope", kId},
      {"/machine.slice/libpod-" + kId + ".scope/container", kId},
      {"/libpod_parent/libpod-" + kId, kId},
      {"/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" + kId + ".scope", kId},
      // other systemd scopes named by an ID
      {"/machine.slice/whatever-runtime-" + kId + ".scope", kId},
      // nested: the innermost wins
      {"/docker/" + kId + "/docker/" + kId2, kId2},
      {"/system.slice/docker-" + kId + ".scope/kubepods/besteffort/podx/" + kId2, kId2},
      // no container
      {"/", ""},
      {"", ""},
      {"/user.slice/user-1000.slice/session-2.scope", ""},
      {"/system.slice/sshd.service", ""},
      {"/system.slice/docker-" + kId.substr(1) + ".scope", ""},  // 63 hex digits
      {"/docker/" + kId.substr(1), ""},
      {"/docker/" + kId + "0", ""},  // 65
      {"/system.slice/docker-" + upper + ".scope", ""},
      {"/docker/" + upper, ""},
      {"/system.slice/docker-" + kId.substr(0, 63) + "g.scope", ""},
      {"/system.slice/var-lib-docker-containers-" + kId + ".mount", ""},
      {"/system.slice/docker-" + kId + ".service", ""},
      {"/system.slice/docker-" + kId + ".slice", ""},
      {"/system.slice/" + kId + ".scope", ""},  // no runtime prefix
      {"/system.slice/-" + kId + ".scope", ""},
      {"/kubepods.slice/kubepods-besteffort.slice", ""},
  };
  for (const IdCase& c : cases) {
    EXPECT_EQ(container_id_from_cgroup(c.path), c.want) << "path: " << c.path;
  }
}

bool mountinfo_has_cgroup2() {
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.find(" - cgroup2 ") != std::string::npos) return true;
  }
  return false;
}

TEST(CgroupTest, Cgroup2MountFound) {
  if (!mountinfo_has_cgroup2()) GTEST_SKIP() << "no cgroup2 mount in /proc/self/mountinfo";
  auto mount = cgroup2_mount();
  ASSERT_TRUE(mount.has_value());
  struct stat st {};
  ASSERT_EQ(stat((*mount + "/cgroup.procs").c_str(), &st), 0) << *mount;
  // The hierarchy's root is id 1, but inside a cgroup namespace the mount's
  // root is the namespace's cgroup: only its path is known.
  auto id = cgroup_id_of(*mount);
  ASSERT_TRUE(id.has_value());
  CgroupPaths paths(mount);
  EXPECT_EQ(paths.path_of(*id), "/");
}

TEST(CgroupTest, NoMountResolvesNothing) {
  CgroupPaths paths(std::nullopt);
  EXPECT_EQ(paths.path_of(1), "");
  CgroupPaths missing(std::string("/nonexistent/cgroup2"));
  EXPECT_EQ(missing.path_of(1), "");
}

TEST(CgroupTest, CgroupIdOfMissingDirectory) {
  errno = 0;
  EXPECT_FALSE(cgroup_id_of("/nonexistent/cgroup/dir").has_value());
  EXPECT_EQ(errno, ENOENT);
}

// A child cgroup of the cgroup2 root, removed at the end of the test.
class CgroupDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root to create a cgroup";
    mount_ = cgroup2_mount();
    if (!mount_) GTEST_SKIP() << "cgroup2 is not mounted";
    rel_ = "/tc-unit-" + std::to_string(getpid()) + "-" + std::to_string(std::random_device{}());
    if (mkdir((*mount_ + rel_).c_str(), 0755) != 0) {
      GTEST_SKIP() << "cannot create " << *mount_ + rel_ << ": " << std::strerror(errno);
    }
    made_ = true;
    if (mkdir((*mount_ + rel_ + "/inner").c_str(), 0755) == 0) inner_ = true;
  }
  void TearDown() override {
    if (inner_) rmdir((*mount_ + rel_ + "/inner").c_str());
    if (made_) rmdir((*mount_ + rel_).c_str());
  }
  std::optional<std::string> mount_;
  std::string rel_;
  bool made_ = false;
  bool inner_ = false;
};

TEST_F(CgroupDirTest, IdMatchesInodeAndRoundTrips) {
  auto id = cgroup_id_of(*mount_ + rel_);
  ASSERT_TRUE(id.has_value());
  struct stat st {};
  ASSERT_EQ(stat((*mount_ + rel_).c_str(), &st), 0);
  EXPECT_EQ(*id, static_cast<std::uint64_t>(st.st_ino));
  EXPECT_GT(*id, 1u);

  CgroupPaths paths(mount_);
  EXPECT_EQ(paths.path_of(*id), rel_);
  EXPECT_EQ(paths.path_of(*id), rel_);  // cached
  ASSERT_TRUE(inner_);
  auto inner = cgroup_id_of(*mount_ + rel_ + "/inner");
  ASSERT_TRUE(inner.has_value());
  EXPECT_NE(*inner, *id);
  EXPECT_EQ(paths.path_of(*inner), rel_ + "/inner");
}

TEST_F(CgroupDirTest, RemovedCgroupResolvesToNothing) {
  ASSERT_TRUE(inner_);
  auto inner = cgroup_id_of(*mount_ + rel_ + "/inner");
  ASSERT_TRUE(inner.has_value());
  ASSERT_EQ(rmdir((*mount_ + rel_ + "/inner").c_str()), 0);
  inner_ = false;
  CgroupPaths paths(mount_);
  EXPECT_EQ(paths.path_of(*inner), "");
  EXPECT_EQ(paths.path_of(*inner), "");  // remembered miss
  EXPECT_EQ(paths.path_of(~0ull), "");
}

// Drops CAP_DAC_READ_SEARCH from the effective set, which open_by_handle_at()
// needs, so that path_of() has to walk the mount.
bool drop_dac_read_search() {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = {};
  if (syscall(SYS_capget, &hdr, data) != 0) return false;
  data[CAP_TO_INDEX(CAP_DAC_READ_SEARCH)].effective &= ~CAP_TO_MASK(CAP_DAC_READ_SEARCH);
  return syscall(SYS_capset, &hdr, data) == 0;
}

TEST_F(CgroupDirTest, WalkFallbackWithoutFileHandles) {
  ASSERT_TRUE(inner_);
  auto id = cgroup_id_of(*mount_ + rel_);
  auto inner = cgroup_id_of(*mount_ + rel_ + "/inner");
  ASSERT_TRUE(id && inner);
  // In a child, to keep this process's capabilities. Exit codes say which
  // check failed.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (!drop_dac_read_search()) _exit(10);
    CgroupPaths paths(mount_);
    if (paths.path_of(*inner) != rel_ + "/inner") _exit(11);
    // Filled in by the same walk: no second walk needed within the second.
    if (paths.path_of(*id) != rel_) _exit(12);
    if (!paths.path_of(~0ull).empty()) _exit(13);
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "10: capset failed, 11/12: walk did not resolve, 13: bogus id";
}

}  // namespace
}  // namespace tcpconnect
