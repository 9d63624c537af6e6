# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_update_global_optspecs
    string join \n root= json secure= verify= source= now noreboot progress-fd= h/help V/version
end

function __fish_update_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_update_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_update_using_subcommand
    set -l cmd (__fish_update_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c update -n "__fish_update_needs_command" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_needs_command" -l secure -d 'Use mutual TLS (the device certificate) for this run: true or false' -r -f -a "true\t''
false\t''"
complete -c update -n "__fish_update_needs_command" -l verify -d 'Require signatures from trusted keys for this run: true or false. false skips signature checks only (hashes are always checked) and is logged as a warning' -r -f -a "true\t''
false\t''"
complete -c update -n "__fish_update_needs_command" -l source -d 'Use this source URL for this run (https://, http:// or file://)' -r -f
complete -c update -n "__fish_update_needs_command" -l progress-fd -d 'Write progress as JSON Lines to the open file descriptor N (a pipe, file or terminal the caller opened for writing; not 0 or 1): one object per phase start, whole percent and phase end' -r
complete -c update -n "__fish_update_needs_command" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_needs_command" -l now -d 'Install now instead of only checking'
complete -c update -n "__fish_update_needs_command" -l noreboot -d 'Do not reboot after a successful install (the new slot boots at the next reboot)'
complete -c update -n "__fish_update_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c update -n "__fish_update_needs_command" -s V -l version -d 'Print version'
complete -c update -n "__fish_update_needs_command" -f -a "config" -d 'Show or change the configuration (/etc/update/update.toml) and the keyring'
complete -c update -n "__fish_update_needs_command" -f -a "status" -d 'Show the slots, the running version and the boot state'
complete -c update -n "__fish_update_needs_command" -f -a "history" -d 'Show the audit log: every config change, check, install, switch, mark-good and rollback'
complete -c update -n "__fish_update_needs_command" -f -a "drivers" -d 'Show the drivers, whether each is available here, and what each can do'
complete -c update -n "__fish_update_needs_command" -f -a "mark-good" -d 'Commit the running slot after a successful boot (stops the boot-retry countdown)'
complete -c update -n "__fish_update_needs_command" -f -a "cancel" -d 'Drop an installed update that waits for its reboot: the running slot stays the one that boots. (`mark-good` refuses while an update is pending, so it never cancels one silently.)'
complete -c update -n "__fish_update_needs_command" -f -a "mark-bad" -d 'Mark the running slot bad: it is not booted again, the other (committed) slot boots next, and its release is never installed again. Refused when it holds the only committed version'
complete -c update -n "__fish_update_needs_command" -f -a "rollback" -d 'Make the other (good) slot boot next, undoing the last update'
complete -c update -n "__fish_update_needs_command" -f -a "daemon" -d 'Run the update daemon: after boot, health-check a slot on trial and mark it good (or reboot so the boot counter falls back); then check the source on the configured schedule (with jitter; a missed window is caught up at start) and install what it finds'
complete -c update -n "__fish_update_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "source" -d 'Set the update source: an https://, http:// or file:// URL'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "key" -d 'Manage trusted public keys (ed25519)'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "schedule" -d 'Check every N units: `schedule hourly 6` checks every six hours; `schedule off` stops scheduled checks'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "log" -d 'Where log lines go: a file path, or syslog (the default)'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "verify" -d 'Require signatures from trusted keys: true (the default) or false'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "boot-retry-limit" -d 'Boot attempts of a new slot before falling back to the old one (1 to 9)'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "secure" -d 'Use mutual TLS with the device certificate: true or false'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "client-cert" -d 'The device certificate (PEM) used when secure is true; `none` clears it'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "client-key" -d 'The device private key (PEM) used when secure is true; `none` clears it'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "server-ca" -d 'A CA certificate (PEM) that signs the source\'s certificate; `none` uses the system store'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "server" -d 'The fleet server (update-server) to check in with, report each update step to and take pushed checks from: an https:// URL, or `none`. Uses the client certificate of `tls.client-cert`'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "signature-threshold" -d 'How many distinct trusted keys must sign an update (1 to 16)'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "driver" -d 'Which implementation to use: auto (probe), native, rauc, swupdate, mender, ostree, swupd'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "show" -d 'Show the configuration'
complete -c update -n "__fish_update_using_subcommand config; and not __fish_seen_subcommand_from source key schedule log verify boot-retry-limit secure client-cert client-key server-ca server signature-threshold driver show help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from source" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from source" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from source" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -f -a "add" -d 'Trust a new key under a new name'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -f -a "delete" -d 'Remove a trusted key'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -f -a "update" -d 'Replace the key stored under a name'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -f -a "list" -d 'List the trusted keys'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from schedule" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from schedule" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from schedule" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from log" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from log" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from log" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from verify" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from verify" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from boot-retry-limit" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from boot-retry-limit" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from boot-retry-limit" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from secure" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from secure" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from secure" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from client-cert" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from client-cert" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from client-cert" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from client-key" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from client-key" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from client-key" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from server-ca" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from server-ca" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from server-ca" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from server" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from server" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from server" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from signature-threshold" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from signature-threshold" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from signature-threshold" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from driver" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from driver" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from driver" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from show" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from show" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from show" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "source" -d 'Set the update source: an https://, http:// or file:// URL'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "key" -d 'Manage trusted public keys (ed25519)'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "schedule" -d 'Check every N units: `schedule hourly 6` checks every six hours; `schedule off` stops scheduled checks'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "log" -d 'Where log lines go: a file path, or syslog (the default)'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Require signatures from trusted keys: true (the default) or false'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "boot-retry-limit" -d 'Boot attempts of a new slot before falling back to the old one (1 to 9)'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "secure" -d 'Use mutual TLS with the device certificate: true or false'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "client-cert" -d 'The device certificate (PEM) used when secure is true; `none` clears it'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "client-key" -d 'The device private key (PEM) used when secure is true; `none` clears it'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "server-ca" -d 'A CA certificate (PEM) that signs the source\'s certificate; `none` uses the system store'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "server" -d 'The fleet server (update-server) to check in with, report each update step to and take pushed checks from: an https:// URL, or `none`. Uses the client certificate of `tls.client-cert`'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "signature-threshold" -d 'How many distinct trusted keys must sign an update (1 to 16)'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "driver" -d 'Which implementation to use: auto (probe), native, rauc, swupdate, mender, ostree, swupd'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "show" -d 'Show the configuration'
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update -n "__fish_update_using_subcommand status" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand status" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand status" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand history" -l last -d 'Show only the last N records' -r
complete -c update -n "__fish_update_using_subcommand history" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand history" -l verify -d 'Check the hash chain of the audit log and its rotated files instead: exit 6 when a record was edited, removed, inserted or reordered'
complete -c update -n "__fish_update_using_subcommand history" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand history" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand drivers" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand drivers" -l markdown -d 'Print the capability matrix as a Markdown table; not with --json'
complete -c update -n "__fish_update_using_subcommand drivers" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand drivers" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand mark-good" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand mark-good" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand mark-good" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand cancel" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand cancel" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand cancel" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand mark-bad" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand mark-bad" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand mark-bad" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand rollback" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand rollback" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand rollback" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand daemon" -l root -d 'Treat DIR as the device\'s root: every path (config, keyring, state, logs, slots, boot environment, the syslog socket) is taken below it' -r -f -a "(__fish_complete_directories)"
complete -c update -n "__fish_update_using_subcommand daemon" -l once -d 'Do the post-boot step and one scheduled check if it is due, then exit'
complete -c update -n "__fish_update_using_subcommand daemon" -l check-only -d 'Check and queue only; never install from the daemon'
complete -c update -n "__fish_update_using_subcommand daemon" -l json -d 'Print the result as one versioned JSON document (before or after the subcommand: `update --json status`); an error is then a JSON document on stdout too, with the same exit code'
complete -c update -n "__fish_update_using_subcommand daemon" -s h -l help -d 'Print help'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "config" -d 'Show or change the configuration (/etc/update/update.toml) and the keyring'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "status" -d 'Show the slots, the running version and the boot state'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "history" -d 'Show the audit log: every config change, check, install, switch, mark-good and rollback'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "drivers" -d 'Show the drivers, whether each is available here, and what each can do'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "mark-good" -d 'Commit the running slot after a successful boot (stops the boot-retry countdown)'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "cancel" -d 'Drop an installed update that waits for its reboot: the running slot stays the one that boots. (`mark-good` refuses while an update is pending, so it never cancels one silently.)'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "mark-bad" -d 'Mark the running slot bad: it is not booted again, the other (committed) slot boots next, and its release is never installed again. Refused when it holds the only committed version'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "rollback" -d 'Make the other (good) slot boot next, undoing the last update'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "daemon" -d 'Run the update daemon: after boot, health-check a slot on trial and mark it good (or reboot so the boot counter falls back); then check the source on the configured schedule (with jitter; a missed window is caught up at start) and install what it finds'
complete -c update -n "__fish_update_using_subcommand help; and not __fish_seen_subcommand_from config status history drivers mark-good cancel mark-bad rollback daemon help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "source" -d 'Set the update source: an https://, http:// or file:// URL'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "key" -d 'Manage trusted public keys (ed25519)'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "schedule" -d 'Check every N units: `schedule hourly 6` checks every six hours; `schedule off` stops scheduled checks'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "log" -d 'Where log lines go: a file path, or syslog (the default)'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "verify" -d 'Require signatures from trusted keys: true (the default) or false'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "boot-retry-limit" -d 'Boot attempts of a new slot before falling back to the old one (1 to 9)'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "secure" -d 'Use mutual TLS with the device certificate: true or false'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "client-cert" -d 'The device certificate (PEM) used when secure is true; `none` clears it'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "client-key" -d 'The device private key (PEM) used when secure is true; `none` clears it'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "server-ca" -d 'A CA certificate (PEM) that signs the source\'s certificate; `none` uses the system store'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "server" -d 'The fleet server (update-server) to check in with, report each update step to and take pushed checks from: an https:// URL, or `none`. Uses the client certificate of `tls.client-cert`'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "signature-threshold" -d 'How many distinct trusted keys must sign an update (1 to 16)'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "driver" -d 'Which implementation to use: auto (probe), native, rauc, swupdate, mender, ostree, swupd'
complete -c update -n "__fish_update_using_subcommand help; and __fish_seen_subcommand_from config" -f -a "show" -d 'Show the configuration'

# Added by `cargo xtask docs`: the values of positional arguments.
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from driver" -f -a "auto native rauc swupdate mender ostree swupd"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from secure" -f -a "true false"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from boot-retry-limit" -f -a "1 2 3 4 5 6 7 8 9"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from verify" -f -a "true false"
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from schedule" -f -a "monthly weekly daily hourly minute off"

# Added by `cargo xtask docs`: the names of the trusted keys.
function __fish_update_key_names
    set -l cmd (commandline -opc)
    set -l root
    for i in (seq 2 (count $cmd))
        switch $cmd[$i]
            case --root
                set root --root $cmd[(math $i + 1)]
            case '--root=*'
                set root $cmd[$i]
        end
    end
    command update $root config key list 2>/dev/null | string replace -r '\s.*' ''
end
complete -c update -n "__fish_update_using_subcommand config; and __fish_seen_subcommand_from key; and __fish_seen_subcommand_from delete update" -f -a "(__fish_update_key_names)"
