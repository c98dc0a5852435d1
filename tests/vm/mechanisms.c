// mechanisms OBJ NAME...: loads and attaches each named program of OBJ on its
// own and prints "NAME yes" or "NAME no (load|attach: error)". A real attach,
// because a kernel can know a program type and still refuse it (lockdown,
// no kprobe support, EPERM for fentry on this project's build machines).
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

static int quiet(enum libbpf_print_level level, const char *fmt, va_list args) { return 0; }

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: mechanisms OBJ NAME...\n");
    return 2;
  }
  libbpf_set_print(quiet);
  for (int i = 2; i < argc; i++) {
    struct bpf_object *obj = bpf_object__open_file(argv[1], NULL);
    if (!obj) {
      fprintf(stderr, "mechanisms: cannot open %s\n", argv[1]);
      return 1;
    }
    struct bpf_program *prog, *want = NULL;
    bpf_object__for_each_program(prog, obj) {
      const int mine = strcmp(bpf_program__name(prog), argv[i]) == 0;
      bpf_program__set_autoload(prog, mine);
      if (mine) want = prog;
    }
    if (!want) {
      printf("%s no (no such program)\n", argv[i]);
    } else if (bpf_object__load(obj) != 0) {
      printf("%s no (load: %s)\n", argv[i], strerror(errno));
    } else {
      struct bpf_link *link = bpf_program__attach(want);
      if (!link) {
        printf("%s no (attach: %s)\n", argv[i], strerror(errno));
      } else {
        printf("%s yes\n", argv[i]);
        bpf_link__destroy(link);
      }
    }
    bpf_object__close(obj);
  }
  return 0;
}
