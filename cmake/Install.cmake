# Install rules and Debian packaging (CPack).
#
# Only what a user of the tool needs is installed: the binary and its other
# names, their man pages and bash completion, the documentation and the
# systemd unit of the metrics mode. Test helpers and the benchmark have no
# install rules and stay out of the package.
#
#   cmake --install build --prefix /tmp/inst     # lay the files out
#   (cd build && cpack -G DEB)                   # build tcpconnect_<ver>_<arch>.deb

include(GNUInstallDirs)

# The other bcc tools the binary speaks for (TCPCONNECT_TOOL_NAMES, CMakeLists.txt): called by
# one of these names (a symlink to tcpconnect), it takes that tool's command line and prints its
# output. Every per-name item below (symlink, man page, completion, diversion of libbpf-tools'
# binary) comes from that one list.

# bcc and libbpf-tools put their tracers in sbin: they need root.
install(TARGETS tcpconnect RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR})

# Directories as install(CODE) sees them: DESTDIR, then the prefix (chosen at
# install time: cmake --install --prefix, or CPack's /usr) unless absolute.
foreach(_tc_kind SBINDIR MANDIR DATAROOTDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_tc_kind}}")
    set(_tc_${_tc_kind} "\$ENV{DESTDIR}${CMAKE_INSTALL_${_tc_kind}}")
  else()
    set(_tc_${_tc_kind} "\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_${_tc_kind}}")
  endif()
endforeach()

# Relative symlinks (tcplife -> tcpconnect), so the tree can be moved or
# installed under any prefix or DESTDIR; CPack packs them as symlinks.
# _tc_link(DIR TARGET NAME...) creates DIR/NAME -> TARGET for each NAME.
function(_tc_link dir target)
  foreach(name IN LISTS ARGN)
    install(CODE "
      file(MAKE_DIRECTORY \"${dir}\")
      message(STATUS \"Installing: ${dir}/${name} -> ${target}\")
      file(REMOVE \"${dir}/${name}\")
      file(CREATE_LINK ${target} \"${dir}/${name}\" SYMBOLIC)
      list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"${dir}/${name}\")
    ")
  endforeach()
endfunction()
_tc_link("${_tc_SBINDIR}" tcpconnect ${TCPCONNECT_TOOL_NAMES})

# The man pages are compressed while they are installed (Debian policy wants
# man pages gzipped, and CPack does not do it). gzip -n leaves out the name and
# time stamp, so the same page always gives the same bytes. Doing it at install
# time means no build target has to run first and a page is never stale.
foreach(_tc_name tcpconnect ${TCPCONNECT_TOOL_NAMES})
  set(_tc_src ${PROJECT_SOURCE_DIR}/man/${_tc_name}.8)
  set(_tc_out "${_tc_MANDIR}/man8/${_tc_name}.8.gz")
  install(CODE "
    file(MAKE_DIRECTORY \"${_tc_MANDIR}/man8\")
    message(STATUS \"Installing: ${_tc_out}\")
    execute_process(COMMAND gzip -9 -n -c \"${_tc_src}\"
                    OUTPUT_FILE \"${_tc_out}\"
                    RESULT_VARIABLE _rc)
    if(NOT _rc EQUAL 0)
      message(FATAL_ERROR \"gzip of ${_tc_src} failed: \${_rc}\")
    endif()
    file(CHMOD \"${_tc_out}\" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    list(APPEND CMAKE_INSTALL_MANIFEST_FILES \"${_tc_out}\")
  ")
endforeach()

# bash-completion loads completions on demand from this directory, by command
# name. One script completes every name (it picks the options by the command
# it completes for); the other names are symlinks to it.
install(FILES ${PROJECT_SOURCE_DIR}/completion/tcpconnect.bash
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions
        RENAME tcpconnect)
_tc_link("${_tc_DATAROOTDIR}/bash-completion/completions" tcpconnect ${TCPCONNECT_TOOL_NAMES})

file(GLOB TCPCONNECT_DOCS CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${TCPCONNECT_DOCS}
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Relative to the prefix: /usr/lib/systemd/system for the package, which
# systemd reads on Debian (merged /usr) as on every other distribution.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/tcpconnect-metrics.service
        DESTINATION lib/systemd/system)

# ---- Debian package -------------------------------------------------------

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME tcpconnect)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "tcpconnect")
set(CPACK_PACKAGE_CONTACT "tcpconnect maintainers <tcpconnect@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "show every TCP connection with the process behind it (eBPF)")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # tcpconnect_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Library dependencies (libbpf1, libelf1, libfmt9, libcap-ng0, libstdc++6, ...)
# are read from the binary by dpkg-shlibdeps (package dpkg-dev). In a cross build
# (scripts/cross-arm64) it finds the target's libraries too: by the ELF class and
# machine of the binary, in the multiarch directories that the target's libc6 lists
# in /etc/ld.so.conf.d, and then the packages that own them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# CPack asks dpkg for the architecture, which answers the build machine's: a cross
# build names its target's, from the target's multiarch triplet (aarch64-linux-gnu ->
# arm64).
if(CMAKE_CROSSCOMPILING AND NOT CPACK_DEBIAN_PACKAGE_ARCHITECTURE)
  execute_process(COMMAND dpkg-architecture -qDEB_HOST_ARCH -t${CMAKE_LIBRARY_ARCHITECTURE}
                  OUTPUT_VARIABLE CPACK_DEBIAN_PACKAGE_ARCHITECTURE
                  OUTPUT_STRIP_TRAILING_WHITESPACE RESULT_VARIABLE _tc_rc)
  if(NOT _tc_rc EQUAL 0 OR NOT CPACK_DEBIAN_PACKAGE_ARCHITECTURE)
    message(FATAL_ERROR "no Debian architecture for ${CMAKE_LIBRARY_ARCHITECTURE} "
      "(dpkg-architecture, package dpkg-dev); set CPACK_DEBIAN_PACKAGE_ARCHITECTURE")
  endif()
endif()
# The Description's first line is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the rest.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "tcpconnect traces the TCP connections a Linux host makes (and, on request,
accepts) as they happen, with the process, user, addresses and ports of each.
It takes the flags and prints the columns of bcc's tcpconnect, and adds
handshake outcomes and latency, connection lifetimes, per-process counts with
periodicity, container and namespace identity, the DNS name each destination
came from, and a Prometheus metrics endpoint.
.
It is also installed as tcpaccept, tcplife and tcpconnlat, which take the
command lines and print the columns of the bcc tools of those names; the
libbpf-tools programs of the same names are diverted while it is installed.
.
It attaches to stable kernel tracepoints only (no kprobes) through BPF CO-RE,
so it needs the kernel's BTF (/sys/kernel/btf/vmlinux) but no kernel headers
or compiler at run time.")

# Maintainer scripts.
# - Debian's libbpf-tools ships kprobe-based /usr/sbin/tcpconnect, tcplife and
#   tcpconnlat of its own. Rather than conflict with the whole package (its
#   tcplife is used by the benchmark), each of our names is diverted, to
#   /usr/sbin/NAME.libbpf-tools, while this package is installed, and put back
#   when it is removed. tcpaccept is diverted too, although libbpf-tools 0.26
#   has none, so that a later libbpf-tools that adds it cannot take ours.
# - systemd is told about the unit when the package comes and goes, and a
#   running metrics service is stopped before its binary is removed. The unit
#   is never enabled or started by the package: exposing connection metrics is
#   the administrator's decision (see docs/deployment.md). Without systemd as
#   init (containers, chroots) the systemctl calls are skipped.
set(_tc_deb_dir ${CMAKE_CURRENT_BINARY_DIR}/debian-control)
list(JOIN TCPCONNECT_TOOL_NAMES " " _tc_names)
set(_tc_divert_loop "for name in tcpconnect ${_tc_names}; do")
set(_tc_divert "--package tcpconnect --rename --divert /usr/sbin/$name.libbpf-tools /usr/sbin/$name")
file(WRITE ${_tc_deb_dir}/preinst "#!/bin/sh
set -e
if [ \"$1\" = install ] || [ \"$1\" = upgrade ]; then
    ${_tc_divert_loop}
        dpkg-divert --add ${_tc_divert} >/dev/null
    done
fi
exit 0
")
file(WRITE ${_tc_deb_dir}/postinst [[#!/bin/sh
set -e
if [ "$1" = configure ] && [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
exit 0
]])
file(WRITE ${_tc_deb_dir}/prerm [[#!/bin/sh
set -e
if [ "$1" = remove ] && [ -d /run/systemd/system ]; then
    systemctl --system stop tcpconnect-metrics.service >/dev/null 2>&1 || true
fi
exit 0
]])
file(WRITE ${_tc_deb_dir}/postrm "#!/bin/sh
set -e
case \"$1\" in
    remove|abort-install|disappear)
        ${_tc_divert_loop}
            dpkg-divert --remove ${_tc_divert} >/dev/null
        done ;;
esac
if [ -d /run/systemd/system ]; then
    systemctl --system daemon-reload >/dev/null || true
fi
if [ \"$1\" = purge ] && [ -x /usr/bin/deb-systemd-helper ]; then
    deb-systemd-helper purge tcpconnect-metrics.service >/dev/null || true
fi
exit 0
")
file(CHMOD ${_tc_deb_dir}/preinst ${_tc_deb_dir}/postinst ${_tc_deb_dir}/prerm
     ${_tc_deb_dir}/postrm
     PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                 WORLD_READ WORLD_EXECUTE)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_tc_deb_dir}/preinst ${_tc_deb_dir}/postinst ${_tc_deb_dir}/prerm ${_tc_deb_dir}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
