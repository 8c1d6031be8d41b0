#!/usr/bin/env bash
# Runs an exported model on a Cortex-M4 under QEMU and on the host, and compares them.
#
# Usage: tests/embedded_check.sh DIR NAME [--allow-differences]
#   DIR holds NAME.h, NAME.c and NAME_test.c (mtl export --test-images N). The same C files
#   are built twice: with the host's cc, and with arm-none-eabi-gcc + picolibc for a
#   Cortex-M4F (-mcpu=cortex-m4 -mfloat-abi=hard, QEMU machine mps2-an386, semihosting for
#   stdout and exit), both -std=c99 -Wall -Wextra -pedantic -Werror -ffp-contract=off.
#   The "out" lines (every output's IEEE bits, per image) and "correct" lines must be
#   identical, else exit 1 (--allow-differences: report only; fp32's exp/log differ
#   between glibc and picolibc).
#   QEMU runs with -icount shift=0 (one instruction per ns of virtual time); the program
#   counts SysTick ticks over its inferences and over a loop of known length, which gives
#   instructions per inference. arm-none-eabi-size gives the model's sections; the program
#   measures NAME_predict's stack by painting.
# Prints "key value" lines (instructions_per_inference, text, rodata, data, bss, stack, ...).
set -euo pipefail
DIR=$1
NAME=$2
ALLOW=${3:-}
for t in arm-none-eabi-gcc qemu-system-arm; do
  command -v "$t" >/dev/null || { echo "embedded_check: $t not found (make setup installs it)" >&2; exit 3; }
done
for f in "$NAME.h" "$NAME.c" "${NAME}_test.c"; do
  [ -f "$DIR/$f" ] || { echo "embedded_check: $DIR/$f missing (mtl export --test-images N writes it)" >&2; exit 2; }
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
CFLAGS="-std=c99 -O2 -Wall -Wextra -pedantic -Werror -ffp-contract=off"
ARMFLAGS="-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16"
# mps2-an386: 4 MB of code memory at 0, 4 MB of data memory at 0x20000000
LINK="--specs=picolibc.specs --oslib=semihost --crt0=semihost -Wl,--defsym=__flash=0x00000000 \
      -Wl,--defsym=__flash_size=0x400000 -Wl,--defsym=__ram=0x20000000 -Wl,--defsym=__ram_size=0x400000"

${CC:-cc} $CFLAGS -I"$DIR" -o "$WORK/host" "$DIR/$NAME.c" "$DIR/${NAME}_test.c" -lm
"$WORK/host" > "$WORK/host.txt"

arm-none-eabi-gcc $ARMFLAGS $CFLAGS --specs=picolibc.specs -c -o "$WORK/$NAME.o" "$DIR/$NAME.c"
arm-none-eabi-gcc $ARMFLAGS $CFLAGS $LINK -I"$DIR" -o "$WORK/arm.elf" "$WORK/$NAME.o" "$DIR/${NAME}_test.c" -lm
timeout 600 qemu-system-arm -M mps2-an386 -display none -monitor none -serial null -icount shift=0 \
  -chardev stdio,id=out -semihosting-config enable=on,target=native,chardev=out -kernel "$WORK/arm.elf" > "$WORK/arm.txt"

grep -E '^(out|correct) ' "$WORK/host.txt" > "$WORK/host.cmp"
grep -E '^(out|correct) ' "$WORK/arm.txt" > "$WORK/arm.cmp"
IMAGES=$(grep -c '^out ' "$WORK/host.cmp")
DIFF=$( (diff "$WORK/host.cmp" "$WORK/arm.cmp" || true) | grep -c '^<' || true)
echo "images $IMAGES"
echo "differing_lines $DIFF"
grep '^correct ' "$WORK/arm.txt" | sed 's/^/arm_/'
# sections of the model's object file (SysV: .text code, .rodata const weights, .bss the arena)
arm-none-eabi-size -A "$WORK/$NAME.o" | awk '$1 == ".text" || $1 == ".rodata" || $1 == ".data" || $1 == ".bss" { sub(/^\./, "", $1); print $1, $2 }'
awk '$1 == "ticks" { t = $2; n = $4 } $1 == "calib_ticks" { c = $2; i = $4 } $1 == "stack" { s = $2 }
     END { if (c > 0 && n > 0) printf "instructions_per_inference %.0f\n", t * i / c / n; print "stack", s }' "$WORK/arm.txt"
if [ "$IMAGES" -eq 0 ] || [ "$(grep -c '^out ' "$WORK/arm.cmp")" -ne "$IMAGES" ]; then
  echo "embedded_check: the Cortex-M run printed $(grep -c '^out ' "$WORK/arm.cmp") of $IMAGES outputs" >&2
  exit 1
fi
if [ "$DIFF" -ne 0 ] && [ "$ALLOW" != "--allow-differences" ]; then
  echo "embedded_check: the Cortex-M outputs differ from the host's on $DIFF lines" >&2
  exit 1
fi
echo "identical $([ "$DIFF" -eq 0 ] && echo yes || echo no)"
