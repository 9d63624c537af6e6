# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_update_tool_global_optspecs
    string join \n h/help V/version
end

function __fish_update_tool_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_update_tool_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_update_tool_using_subcommand
    set -l cmd (__fish_update_tool_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c update-tool -n "__fish_update_tool_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c update-tool -n "__fish_update_tool_needs_command" -s V -l version -d 'Print version'
complete -c update-tool -n "__fish_update_tool_needs_command" -f -a "key" -d 'Signing keys'
complete -c update-tool -n "__fish_update_tool_needs_command" -f -a "bundle" -d 'Bundles'
complete -c update-tool -n "__fish_update_tool_needs_command" -f -a "repo" -d 'Signed repositories in TUF\'s format'
complete -c update-tool -n "__fish_update_tool_needs_command" -f -a "cert" -d 'A small PKI for a fleet: a CA, update-server\'s certificate, device certificates'
complete -c update-tool -n "__fish_update_tool_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and not __fish_seen_subcommand_from generate help" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and not __fish_seen_subcommand_from generate help" -f -a "generate" -d 'Make an ed25519 key pair: DIR/NAME.key (private, PKCS#8 PEM, mode 0600) and DIR/NAME.pub (base64 of the public key, what `update config key add` takes)'
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and not __fish_seen_subcommand_from generate help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and __fish_seen_subcommand_from generate" -l out -d 'The directory to write to' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and __fish_seen_subcommand_from generate" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "generate" -d 'Make an ed25519 key pair: DIR/NAME.key (private, PKCS#8 PEM, mode 0600) and DIR/NAME.pub (base64 of the public key, what `update config key add` takes)'
complete -c update-tool -n "__fish_update_tool_using_subcommand key; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and not __fish_seen_subcommand_from create verify info help" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and not __fish_seen_subcommand_from create verify info help" -f -a "create" -d 'Make a signed bundle'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and not __fish_seen_subcommand_from create verify info help" -f -a "verify" -d 'Verify a bundle completely: signatures, structure and every chunk'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and not __fish_seen_subcommand_from create verify info help" -f -a "info" -d 'Show what a bundle says it contains (NOT verified; use `verify`)'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and not __fish_seen_subcommand_from create verify info help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l out -d 'The bundle file to write' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l version -d 'Release version (semver)' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l compatible -d 'The board it is for' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l key -d 'A private key file; repeat for several signatures. The key\'s name is the file stem' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l min-version -d 'The oldest installed version this bundle may be installed over' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l image -d 'An image: SLOT-GROUP=PATH (e.g. rootfs=rootfs.ext4); repeat for several' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l component -d 'A component beside the images (bundle format 2): NAME:KIND:VERSION=PATH, e.g. mcu:firmware:2.1.0=zephyr.signed.bin; KIND is files, app, firmware, data, fwupd or an out-of-tree handler\'s kind. Repeat for several' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l requires -d 'A requirement of a component on another: NAME:OTHER:VERSIONS, e.g. web-ui:mcu:>=2.1' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l option -d 'A kind-specific option of a component: NAME:KEY=VALUE; VALUE is JSON (true, 3, ["a","b"], {"k":"v"}), or else taken as a string' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l hook -d 'A hook script: KIND=PATH (KIND: post-install)' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l chunk-kib -d 'Uncompressed chunk size in KiB (1 to 16384)' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l level -d 'zstd level (1-19)' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l delta-base -d 'An image of the release most devices will update from (repeat for each slot group): blocks not in it go first in the store, so those devices fetch them in one request. Implies --delta' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -l delta -d 'Add a delta index of 4 KiB blocks and a store of them (bundle format 3): a device streaming the bundle fetches only the blocks it does not already have. The chunk size must be a multiple of 4 KiB'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from verify" -l pub -d 'A trusted public key file; repeat for several' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from verify" -l threshold -d 'Distinct trusted signatures required' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from info" -l json -d 'Print JSON'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from info" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "create" -d 'Make a signed bundle'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Verify a bundle completely: signatures, structure and every chunk'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "info" -d 'Show what a bundle says it contains (NOT verified; use `verify`)'
complete -c update-tool -n "__fish_update_tool_using_subcommand bundle; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "init" -d 'Create a repository in DIR: root version 1 (consistent snapshots) and empty targets, snapshot and timestamp metadata'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "add" -d 'Copy FILE into targets/ under its content-addressed name and stage it in the targets metadata; `repo sign` publishes it (or give --key to publish at once)'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "sign" -d 'Publish: sign new versions of targets, snapshot and timestamp with the keys given'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "rotate-key" -d 'Replace a key of a role in a new root version, signed by the old and the new root keys'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "refresh" -d 'Re-sign the timestamp only, with a new version and expiry (run it from cron)'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "verify" -d 'Check a repository as a device would: the root chain, timestamp, snapshot, targets and every target\'s bytes'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and not __fish_seen_subcommand_from init add sign rotate-key refresh verify help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -l key -d 'A root private key (PKCS#8 PEM, as `update-tool key generate` writes); repeat for several. These keys also hold the other roles unless --targets-key, --snapshot-key or --timestamp-key name others' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -l targets-key -d 'A targets private key (repeatable)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -l snapshot-key -d 'A snapshot private key (repeatable)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -l timestamp-key -d 'A timestamp private key (repeatable)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -l threshold -d 'Distinct signatures every role requires' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -l expires -d 'When the root expires: a duration (365d, 52w, 1y) or an RFC 3339 time' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from init" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from add" -l name -d 'The target\'s name (default: the file\'s name); `/`-separated, no `..`' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from add" -l custom -d 'Application data signed with the target: a JSON object' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from add" -l key -d 'Publish at once, signing with these keys (as `repo sign --key`)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from add" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from sign" -l key -d 'A private key of the targets, snapshot or timestamp role; repeat for several' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from sign" -l expires -d 'When the targets and snapshot expire (duration or RFC 3339 time)' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from sign" -l timestamp-expires -d 'When the timestamp expires' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from sign" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from rotate-key" -l role -d 'The role whose key changes: root, targets, snapshot or timestamp' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from rotate-key" -l old -d 'The key to retire: a private key file, or a public key file (NAME.pub)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from rotate-key" -l new -d 'The key that replaces it: a private key file, or a public key file' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from rotate-key" -l key -d 'More root private keys to sign the new root with (repeatable); --old and --new sign too when they are private keys of the root role' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from rotate-key" -l expires -d 'When the new root expires' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from rotate-key" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from refresh" -l key -d 'A timestamp private key; repeat for several' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from refresh" -l expires -d 'When the new timestamp expires' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from refresh" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from verify" -l root -d 'The root to trust (default: DIR/metadata/1.root.json, so the whole chain is checked)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from verify" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "init" -d 'Create a repository in DIR: root version 1 (consistent snapshots) and empty targets, snapshot and timestamp metadata'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "add" -d 'Copy FILE into targets/ under its content-addressed name and stage it in the targets metadata; `repo sign` publishes it (or give --key to publish at once)'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "sign" -d 'Publish: sign new versions of targets, snapshot and timestamp with the keys given'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "rotate-key" -d 'Replace a key of a role in a new root version, signed by the old and the new root keys'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "refresh" -d 'Re-sign the timestamp only, with a new version and expiry (run it from cron)'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "verify" -d 'Check a repository as a device would: the root chain, timestamp, snapshot, targets and every target\'s bytes'
complete -c update-tool -n "__fish_update_tool_using_subcommand repo; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and not __fish_seen_subcommand_from ca issue help" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and not __fish_seen_subcommand_from ca issue help" -f -a "ca" -d 'Make a certificate authority: DIR/NAME.crt and DIR/NAME.key'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and not __fish_seen_subcommand_from ca issue help" -f -a "issue" -d 'Make a certificate signed by a CA: DIR/NAME.crt and DIR/NAME.key'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and not __fish_seen_subcommand_from ca issue help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from ca" -l out -d 'The directory to write to' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from ca" -l days -d 'Days it is valid' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from ca" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from issue" -l ca -d 'The CA\'s files, without extension (`pki/fleet-ca` for pki/fleet-ca.crt and .key)' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from issue" -l out -d 'The directory to write to' -r -F
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from issue" -l cn -d 'The subject common name (default: NAME)' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from issue" -l server-name -d 'A server certificate for these DNS names and IP addresses (repeatable); without it, a client (device) certificate' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from issue" -l days -d 'Days it is valid' -r
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from issue" -s h -l help -d 'Print help'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "ca" -d 'Make a certificate authority: DIR/NAME.crt and DIR/NAME.key'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "issue" -d 'Make a certificate signed by a CA: DIR/NAME.crt and DIR/NAME.key'
complete -c update-tool -n "__fish_update_tool_using_subcommand cert; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and not __fish_seen_subcommand_from key bundle repo cert help" -f -a "key" -d 'Signing keys'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and not __fish_seen_subcommand_from key bundle repo cert help" -f -a "bundle" -d 'Bundles'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and not __fish_seen_subcommand_from key bundle repo cert help" -f -a "repo" -d 'Signed repositories in TUF\'s format'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and not __fish_seen_subcommand_from key bundle repo cert help" -f -a "cert" -d 'A small PKI for a fleet: a CA, update-server\'s certificate, device certificates'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and not __fish_seen_subcommand_from key bundle repo cert help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from key" -f -a "generate" -d 'Make an ed25519 key pair: DIR/NAME.key (private, PKCS#8 PEM, mode 0600) and DIR/NAME.pub (base64 of the public key, what `update config key add` takes)'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "create" -d 'Make a signed bundle'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "verify" -d 'Verify a bundle completely: signatures, structure and every chunk'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from bundle" -f -a "info" -d 'Show what a bundle says it contains (NOT verified; use `verify`)'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from repo" -f -a "init" -d 'Create a repository in DIR: root version 1 (consistent snapshots) and empty targets, snapshot and timestamp metadata'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from repo" -f -a "add" -d 'Copy FILE into targets/ under its content-addressed name and stage it in the targets metadata; `repo sign` publishes it (or give --key to publish at once)'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from repo" -f -a "sign" -d 'Publish: sign new versions of targets, snapshot and timestamp with the keys given'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from repo" -f -a "rotate-key" -d 'Replace a key of a role in a new root version, signed by the old and the new root keys'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from repo" -f -a "refresh" -d 'Re-sign the timestamp only, with a new version and expiry (run it from cron)'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from repo" -f -a "verify" -d 'Check a repository as a device would: the root chain, timestamp, snapshot, targets and every target\'s bytes'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "ca" -d 'Make a certificate authority: DIR/NAME.crt and DIR/NAME.key'
complete -c update-tool -n "__fish_update_tool_using_subcommand help; and __fish_seen_subcommand_from cert" -f -a "issue" -d 'Make a certificate signed by a CA: DIR/NAME.crt and DIR/NAME.key'
