#!/usr/bin/env bash
# Exits 0 when one of the given folders holds libclang itself (libclang.so*, libclang-NN.so*),
# which bindgen loads to generate the V4L2 bindings. libclang-cpp.so.NN does not count:
# bindgen cannot use it, and some images ship it without libclang.
#   scripts/has-libclang.sh DIR...
for d in "$@"; do
  compgen -G "$d/libclang.so*" >/dev/null && exit 0
  compgen -G "$d/libclang-[0-9]*.so*" >/dev/null && exit 0
done
exit 1
