# Shared by the benchmark scripts (sourced; they set $dir and $MiB).
# make_image NAME SIZE_MIB DATA_EVERY_MIB: 64 MiB runs of random data every
# DATA_EVERY_MIB (64 = fully allocated), holes elsewhere.
make_image() {
  local img=$dir/$1.img size=$2 every=$3
  [ -f "$img" ] && return 0
  echo "bench: creating $img" >&2
  [ -f "$dir/random256" ] || head -c $((256 * MiB)) /dev/urandom >"$dir/random256"
  truncate -s $((size * MiB)) "$img.tmp"
  local off=0 i=0
  while [ $off -lt "$size" ]; do
    dd if="$dir/random256" of="$img.tmp" bs=1M count=64 skip=$(( (i % 4) * 64 )) seek=$off \
      conv=notrunc,sparse status=none
    off=$((off + every)); i=$((i + 1))
  done
  mv "$img.tmp" "$img"
}

