#include "agent/volumes/loop_devices.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>

namespace ferry::agent::volumes {
namespace {

constexpr unsigned kLoopMajor = 7;

Error sys_error(const std::string& what, int err) {
  return Error(err == ENOSPC ? ErrorCode::kNoSpace : ErrorCode::kIo,
               what + ": " + std::strerror(err));
}

std::string read_line(const std::string& path) {
  std::ifstream in(path);
  std::string s;
  std::getline(in, s);
  return s;
}

std::string canonical(const std::string& path) {
  char buf[PATH_MAX];
  return ::realpath(path.c_str(), buf) ? std::string(buf) : std::string();
}

// The loop device (its dev_t) whose backing file is `file`, or 0.
dev_t find_loop(const std::string& file) {
  if (file.empty()) return 0;
  DIR* d = ::opendir("/sys/block");
  if (!d) return 0;
  dev_t found = 0;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.rfind("loop", 0) != 0) continue;
    if (read_line("/sys/block/" + name + "/loop/backing_file") != file) continue;
    unsigned maj = 0, min = 0;
    if (std::sscanf(read_line("/sys/block/" + name + "/dev").c_str(), "%u:%u", &maj, &min) == 2) {
      found = makedev(maj, min);
      break;
    }
  }
  ::closedir(d);
  return found;
}

// `node` is a block special file for `dev` afterwards (made again if it was
// another, e.g. after a reboot gave the file another loop device).
Status make_node(const std::string& node, dev_t dev) {
  struct stat st {};
  if (::lstat(node.c_str(), &st) == 0 && S_ISBLK(st.st_mode) && st.st_rdev == dev) return {};
  std::string tmp = node + ".new";
  ::unlink(tmp.c_str());
  if (::mknod(tmp.c_str(), S_IFBLK | 0600, dev) != 0) return sys_error("mknod " + tmp, errno);
  if (::rename(tmp.c_str(), node.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp.c_str());
    return sys_error("rename " + tmp, err);
  }
  return {};
}

// Attaches `fd` (the backing file) to a free loop device; returns its dev_t.
Result<dev_t> attach_free(int fd, const std::string& file, const std::string& node) {
  int ctl = ::open("/dev/loop-control", O_RDWR | O_CLOEXEC);
  if (ctl < 0) return sys_error("opening /dev/loop-control", errno);
  std::string tmp = node + ".attach";
  for (int attempt = 0; attempt < 16; ++attempt) {
    int n = ::ioctl(ctl, LOOP_CTL_GET_FREE);
    if (n < 0) {
      int err = errno;
      ::close(ctl);
      return sys_error("LOOP_CTL_GET_FREE", err);
    }
    // Opened through a node of our own: /dev/loopN need not exist here.
    dev_t dev = makedev(kLoopMajor, static_cast<unsigned>(n));
    ::unlink(tmp.c_str());
    if (::mknod(tmp.c_str(), S_IFBLK | 0600, dev) != 0) {
      int err = errno;
      ::close(ctl);
      return sys_error("mknod " + tmp, err);
    }
    int lfd = ::open(tmp.c_str(), O_RDWR | O_CLOEXEC);
    ::unlink(tmp.c_str());
    if (lfd < 0) {
      int err = errno;
      ::close(ctl);
      return sys_error("opening loop device " + std::to_string(n), err);
    }
    if (::ioctl(lfd, LOOP_SET_FD, fd) != 0) {
      int err = errno;
      ::close(lfd);
      if (err == EBUSY) continue;  // another process took it first
      ::close(ctl);
      return sys_error("LOOP_SET_FD on loop" + std::to_string(n), err);
    }
    loop_info64 info{};
    std::strncpy(reinterpret_cast<char*>(info.lo_file_name), file.c_str(), LO_NAME_SIZE - 1);
    (void)::ioctl(lfd, LOOP_SET_STATUS64, &info);  // the name only: losetup -l shows it
    ::close(lfd);
    ::close(ctl);
    return dev;
  }
  ::close(ctl);
  return Error(ErrorCode::kUnavailable, "no free loop device after 16 attempts");
}

}  // namespace

std::string loop_backing_file(const std::string& node) {
  struct stat st {};
  if (::stat(node.c_str(), &st) != 0 || !S_ISBLK(st.st_mode)) return "";
  std::string sys = "/sys/dev/block/" + std::to_string(major(st.st_rdev)) + ":" +
                    std::to_string(minor(st.st_rdev)) + "/loop/backing_file";
  return read_line(sys);
}

Status attach_loop(const std::string& node, uint64_t size) {
  const std::string file = node + ".img";
  int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return sys_error("opening " + file, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    return sys_error("stat " + file, err);
  }
  bool grown = false;
  if (static_cast<uint64_t>(st.st_size) < size) {  // sparse: blocks come as data is written
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
      int err = errno;
      ::close(fd);
      return sys_error("sizing " + file, err);
    }
    grown = st.st_size != 0;
  }
  const std::string path = canonical(file);
  dev_t dev = find_loop(path);
  if (dev == 0) {
    auto attached = attach_free(fd, path, node);
    ::close(fd);
    if (!attached.ok()) return attached.error().wrap("volume " + node);
    dev = *attached;
  } else {
    ::close(fd);
  }
  FERRY_TRY(make_node(node, dev));
  if (grown) {  // already attached at the old size
    int lfd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) return sys_error("opening " + node, errno);
    int rc = ::ioctl(lfd, LOOP_SET_CAPACITY, 0);
    int err = errno;
    ::close(lfd);
    if (rc != 0) return sys_error("LOOP_SET_CAPACITY " + node, err);
  }
  return {};
}

Status detach_loop(const std::string& node) {
  const std::string file = node + ".img";
  dev_t dev = find_loop(canonical(file));
  if (dev != 0) {
    FERRY_TRY(make_node(node, dev));
    int lfd = ::open(node.c_str(), O_RDWR | O_CLOEXEC);
    if (lfd < 0) return sys_error("opening " + node, errno);
    // A device still open elsewhere is detached when its last user closes it.
    int rc = ::ioctl(lfd, LOOP_CLR_FD, 0);
    int err = errno;
    ::close(lfd);
    if (rc != 0 && err != ENXIO) return sys_error("LOOP_CLR_FD " + node, err);
  }
  if (::unlink(node.c_str()) != 0 && errno != ENOENT) return sys_error("removing " + node, errno);
  if (::unlink(file.c_str()) != 0 && errno != ENOENT) return sys_error("removing " + file, errno);
  return {};
}

}  // namespace ferry::agent::volumes
