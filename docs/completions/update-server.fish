# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_update_server_global_optspecs
    string join \n h/help V/version
end

function __fish_update_server_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_update_server_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_update_server_using_subcommand
    set -l cmd (__fish_update_server_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c update-server -n "__fish_update_server_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c update-server -n "__fish_update_server_needs_command" -s V -l version -d 'Print version'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "serve" -d 'Serve the repository and the API until SIGINT or SIGTERM'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "events" -d 'Print a device\'s events from the database, oldest first, as JSON lines (the fields of `GET /api/v1/devices/{id}/events`). Safe while the server runs'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "devices" -d 'Print every device the database knows, as JSON lines (the fields of `GET /api/v1/devices`). Safe while the server runs'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "audit" -d 'Print the operator audit log as JSON lines and check its hash chain: exit 0 when it holds (the last line is `{"ok":true,…}`), 10 when a row was edited, removed or inserted (the last line names it). Safe while the server runs'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "ddi-token" -d 'Make a new hawkBit DDI target token for a device and print it on stdout, once: the database keeps only its SHA-256. The device sends it as `Authorization: TargetToken TOKEN` (SWUpdate: `suricatta -k TOKEN` or `targettoken`). A new token replaces the device\'s old one at once; the change is in the operator audit log. Safe while the server runs'
complete -c update-server -n "__fish_update_server_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l repo -d 'The repository directory (made by `update-tool repo init`), served read-only under /repo/' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l listen -d 'The address to listen on, e.g. 0.0.0.0:8443 or [::]:8443' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l tls-cert -d 'The server certificate chain (PEM, leaf first). Without --tls-cert/--tls-key the server speaks plain HTTP, for use behind a TLS-terminating proxy only' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l tls-key -d 'The server\'s private key (PEM)' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l client-ca -d 'Mutual TLS: every client must present a certificate issued by this CA (PEM). The device id is the certificate\'s subject common name' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l client-crl -d 'A certificate revocation list (PEM) from the client CA; repeat for several. A device certificate it lists is refused during the handshake' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l db -d 'The database: sqlite:PATH (created if missing; WAL mode), or PostgreSQL: postgres://USER:PASSWORD@HOST/DB or postgresql:///DB?host=/SOCKET/DIR (servers sharing one database pass check-now requests to each other). The password is never shown' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l admin-token-file -d 'The operator API\'s bearer token: a file holding one line of at least 16 visible ASCII characters (mode 0600). Without it the operator API is disabled' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l operator-tokens -d 'Named operator tokens with roles: a file (mode 0600) of lines `NAME ROLE TOKEN`, ROLE one of viewer, operator, admin; `#` starts a comment line. May be combined with --admin-token-file (an admin named `admin`)' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l max-connections -d 'Open connections at most. At the cap a new connection evicts the oldest one still in its TLS handshake, or is closed when there is none. Kept below the open-file limit, which the server raises to its hard limit at start (the unit sets LimitNOFILE)' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l handshake-timeout -d 'Seconds a client has to finish the TLS handshake' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l header-timeout -d 'Seconds a client has to send a request\'s headers (HTTP/1.1)' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l body-timeout -d 'Seconds a client has to send a request\'s body, counted from its headers' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l idle-timeout -d 'Seconds a connection (HTTP/2 or HTTP/1.1 keep-alive) may stay open with no request in flight. A push stream is a request in flight' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l checkins-per-minute -d 'Check-ins one device (client certificate) may make per minute, in a burst of as many; more are answered 429 with Retry-After. 0: no limit' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l events-per-minute -d 'Events one device may send per minute (429 beyond). 0: no limit' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l push-opens-per-minute -d 'Push streams one device may open per minute (429 beyond). 0: no limit' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l push-streams-per-device -d 'Push streams one device may hold at once; a newer one ends its oldest' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l events-per-device -d 'Keep at most this many events per device (the oldest go first). 0: no limit' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l event-max-age-days -d 'Delete events received more than this many days ago. 0: keep them' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l ddi-tenant -d 'The DDI tenant: the first path segment (compared without regard to case)' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l ddi-poll-secs -d 'How long DDI devices wait between two polls (config.polling.sleep), in seconds' -r
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l ddi-gateway-token-file -d 'The DDI gateway token, which may speak for every device: a file (mode 0600) holding one line of at least 16 visible ASCII characters. Without it, gateway tokens are refused' -r -F
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l insecure-device-ids -d 'TEST ONLY: trust the `device-id` a client puts in its requests instead of a client certificate. Anyone can then speak for any device'
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l dashboard -d 'Serve the operator dashboard under /dashboard on the same listener. Operators log in with their --operator-tokens / --admin-token-file token. With --client-ca the handshake then lets clients without a certificate (browsers) through, and every route outside /dashboard refuses them with 401. Off by default'
complete -c update-server -n "__fish_update_server_using_subcommand serve" -l ddi -d 'Serve hawkBit\'s Direct Device Integration API under /TENANT/controller/v1/ on the same listener, for devices that run a hawkBit client such as SWUpdate\'s suricatta. They follow the same deployments; their feedback counts like a native device\'s events. A device authenticates with its client certificate (the common name must be its controllerId), its target token (`update-server ddi-token`), or the gateway token. Off by default'
complete -c update-server -n "__fish_update_server_using_subcommand serve" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand events" -l db -d 'The database, as for `serve`' -r
complete -c update-server -n "__fish_update_server_using_subcommand events" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand devices" -l db -d 'The database, as for `serve`' -r
complete -c update-server -n "__fish_update_server_using_subcommand devices" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand audit" -l db -d 'The database, as for `serve`' -r
complete -c update-server -n "__fish_update_server_using_subcommand audit" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand ddi-token" -l db -d 'The database, as for `serve`' -r
complete -c update-server -n "__fish_update_server_using_subcommand ddi-token" -s h -l help -d 'Print help'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve events devices audit ddi-token help" -f -a "serve" -d 'Serve the repository and the API until SIGINT or SIGTERM'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve events devices audit ddi-token help" -f -a "events" -d 'Print a device\'s events from the database, oldest first, as JSON lines (the fields of `GET /api/v1/devices/{id}/events`). Safe while the server runs'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve events devices audit ddi-token help" -f -a "devices" -d 'Print every device the database knows, as JSON lines (the fields of `GET /api/v1/devices`). Safe while the server runs'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve events devices audit ddi-token help" -f -a "audit" -d 'Print the operator audit log as JSON lines and check its hash chain: exit 0 when it holds (the last line is `{"ok":true,…}`), 10 when a row was edited, removed or inserted (the last line names it). Safe while the server runs'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve events devices audit ddi-token help" -f -a "ddi-token" -d 'Make a new hawkBit DDI target token for a device and print it on stdout, once: the database keeps only its SHA-256. The device sends it as `Authorization: TargetToken TOKEN` (SWUpdate: `suricatta -k TOKEN` or `targettoken`). A new token replaces the device\'s old one at once; the change is in the operator audit log. Safe while the server runs'
complete -c update-server -n "__fish_update_server_using_subcommand help; and not __fish_seen_subcommand_from serve events devices audit ddi-token help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
