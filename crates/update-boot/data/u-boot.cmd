# libupdate A/B slot selection for U-Boot (update-boot's UBOOT_SCRIPT; docs/reference/boot.md).
#
# Compile:  mkimage -A arm64 -T script -C none -n "libupdate boot" -d u-boot.cmd boot.scr
# Needs:    CONFIG_HUSH_PARSER, CONFIG_CMD_SETEXPR, CONFIG_CMD_SAVEENV and a REDUNDANT environment
#           (CONFIG_SYS_REDUNDAND_ENVIRONMENT / CONFIG_ENV_OFFSET_REDUND): saveenv then writes the
#           copy that is not current, with the flag byte plus one, and a power cut during saveenv
#           leaves the current copy untouched.
# The board's environment supplies:
#   update_boot_a, update_boot_b   commands that load and boot slot A or B with ${bootargs}
#   update_bootargs                the kernel command line without the slot (optional)
# This script sets bootargs to "${update_bootargs} update.slot=A" (or B) and runs the command.
#
# Stored state (docs/reference/boot.md): UPD_ORDER ("A B" or "B A"), UPD_A_OK, UPD_B_OK (0 or 1),
# UPD_A_TRY, UPD_B_TRY (0..9). The algorithm is BootState::boot(); update_boot::simulate_boot is
# its twin; keep them in step. Temporaries are hush locals (name=value), never saved.

# 1. Validate: every value well formed, else use the initial state (A committed) and write nothing.
upd_valid=1
if test "${UPD_ORDER}" != "A B" -a "${UPD_ORDER}" != "B A"; then upd_valid=0; fi
if test "${UPD_A_OK}" != 0 -a "${UPD_A_OK}" != 1; then upd_valid=0; fi
if test "${UPD_B_OK}" != 0 -a "${UPD_B_OK}" != 1; then upd_valid=0; fi
upd_a_digit=0
upd_b_digit=0
for upd_i in 0 1 2 3 4 5 6 7 8 9; do
  if test "${UPD_A_TRY}" = "${upd_i}"; then upd_a_digit=1; fi
  if test "${UPD_B_TRY}" = "${upd_i}"; then upd_b_digit=1; fi
done
if test "${upd_a_digit}" = 0 -o "${upd_b_digit}" = 0; then upd_valid=0; fi

# 2. Walk the order: an ok slot boots as it is; a slot with tries left has one try used and
#    saved (saveenv) before it boots; a try that cannot be saved is not taken (slot skipped).
upd_slot=
upd_reason=
if test "${upd_valid}" = 0; then
  echo "update: no valid boot state in the environment; booting slot A"
  upd_slot=A
  upd_reason=committed
fi
# The loop form is RAUC's field-proven one: the quoted variable is split into A and B.
for upd_s in "${UPD_ORDER}"; do
  if test -n "${upd_slot}"; then
    # a slot is chosen: skip the rest
  elif test "${upd_s}" = A; then
    if test "${UPD_A_OK}" = 1; then
      upd_slot=A
      upd_reason=committed
    elif test "${UPD_A_TRY}" != 0; then
      setexpr UPD_A_TRY ${UPD_A_TRY} - 1
      if saveenv; then
        upd_slot=A
        upd_reason=trial
      else
        setexpr UPD_A_TRY ${UPD_A_TRY} + 1
        echo "update: cannot record a try of slot A; skipping it"
      fi
    fi
  elif test "${upd_s}" = B; then
    if test "${UPD_B_OK}" = 1; then
      upd_slot=B
      upd_reason=committed
    elif test "${UPD_B_TRY}" != 0; then
      setexpr UPD_B_TRY ${UPD_B_TRY} - 1
      if saveenv; then
        upd_slot=B
        upd_reason=trial
      else
        setexpr UPD_B_TRY ${UPD_B_TRY} + 1
        echo "update: cannot record a try of slot B; skipping it"
      fi
    fi
  fi
done

# 3. Last resort: nothing qualified; boot the first slot in the order anyway (nothing written).
if test -z "${upd_slot}"; then
  if test "${UPD_ORDER}" = "B A"; then upd_slot=B; else upd_slot=A; fi
  upd_reason=last-resort
fi

# 4. Boot it with update.slot=A|B on the kernel command line.
echo "update: booting slot ${upd_slot} (${upd_reason})"
setenv bootargs "${update_bootargs} update.slot=${upd_slot}"
if test "${upd_slot}" = A; then run update_boot_a; else run update_boot_b; fi
echo "update: booting slot ${upd_slot} failed"
