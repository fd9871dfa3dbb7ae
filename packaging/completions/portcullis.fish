# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_portcullis_global_optspecs
    string join \n h/help V/version
end

function __fish_portcullis_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_portcullis_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_portcullis_using_subcommand
    set -l cmd (__fish_portcullis_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c portcullis -n "__fish_portcullis_needs_command" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_needs_command" -s V -l version -d 'Print version'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "serve" -d 'Run the server (without --config: anonymous read-only over --root, port 2121)'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "gen-cert" -d 'Write a self-signed certificate and key (DIR/cert.pem, DIR/key.pem) for a quick FTPS start'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "hash-password" -d 'Read a password (prompt, or one line of stdin) and print its argon2id hash'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "firewall" -d 'Print the firewall rules the configuration needs'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "check-config" -d 'Validate a config file and explain each error; run as root, also check what the server\'s user must be able to read after the drop'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "doctor" -d 'Diagnose a server from the client side: log in, try PASV, EPSV, PORT and EPRT, and say which work and why the others do not'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "ctl" -d 'Ask a running server (its control socket): list and kick sessions, list, add and lift bans, reload, drain, status'
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l config -d 'Config file (TOML); the flags below override it' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l root -d 'Directory to serve to anonymous users when no config file is given (default: the current directory; created if missing), or an object-store root "s3://BUCKET/PREFIX" (the store from AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP and the AWS credential variables) or "az://CONTAINER/PREFIX" (the account from AZURE_STORAGE_ACCOUNT_NAME, AZURE_STORAGE_ENDPOINT, AZURE_STORAGE_ALLOW_HTTP and the AZURE_STORAGE_* credentials)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l listen -d 'Control listener ADDR:PORT (repeatable); replaces server.listen' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l passive-ports -d 'Passive data port range LO-HI; replaces passive.ports' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l passive-address -d 'IPv4 address to advertise in PASV replies; replaces passive.address' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l tls-cert -d 'PEM certificate chain: turns on FTPS (AUTH TLS, optional) or replaces tls.cert (or [tls.acme]). Needs --tls-key' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l tls-key -d 'PEM private key for --tls-cert; replaces tls.key' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand gen-cert" -l host -d 'Host name or IP address the certificate is for (repeatable)' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand gen-cert" -l out -d 'Directory to write cert.pem and key.pem into (created if missing)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand gen-cert" -l user -d 'Run as root: the user the server runs as (server.user), who reads the key again at every reload; the key becomes readable by that user\'s group (0640). Default: nobody, whom `serve` without a config becomes when started as root' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand gen-cert" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand hash-password" -l m-cost -d 'Memory cost in KiB (default 19456, the OWASP minimum for argon2id)' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand hash-password" -l t-cost -d 'Iterations (default 2)' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand hash-password" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand firewall" -l config -d 'Config file (without one: the built-in defaults)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand firewall" -l format -d 'Rule syntax' -r -f -a "nftables\t'`nft` commands'
nftables-file\t'A file for `nft -f` (e.g. /etc/nftables.d/portcullis.nft)'
iptables\t'`iptables` commands'
ufw\t'`ufw` commands'
firewalld\t'`firewall-cmd` commands'
windows\t'PowerShell `New-NetFirewallRule` commands'"
complete -c portcullis -n "__fish_portcullis_using_subcommand firewall" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portcullis -n "__fish_portcullis_using_subcommand check-config" -l config -d 'Config file (TOML), as the other commands take it' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand check-config" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand doctor" -l timeout -d 'Seconds to wait for each connection and reply' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand doctor" -l tls -d 'Use explicit FTPS (AUTH TLS, PROT P)'
complete -c portcullis -n "__fish_portcullis_using_subcommand doctor" -l json -d 'Print the report as JSON'
complete -c portcullis -n "__fish_portcullis_using_subcommand doctor" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "sessions" -d 'List the sessions: id, node, user, client, since, idle time, command, transfer (with [cluster], every live node\'s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "kick" -d 'Close a session (the client gets 421; a transfer in flight is cut, an upload not kept), or with --user every session of a user'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "bans" -d 'List the bans in force (and limits.ban_exempt)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "ban" -d 'Ban an address (its sessions to come are refused with 421)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "unban" -d 'Lift an address\'s ban'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "reload" -d 'Reload the config file, as SIGHUP: says what changed and what needs a restart'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "drain" -d 'Drain the server, as SIGTERM: stop accepting, let transfers finish'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "status" -d 'Version, features, uptime, phase, listeners, counts'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "user" -d 'Add, change, disable, enable or delete a [[users]] entry of the config file (comments kept, validated before it is written), then ask the server to reload'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "quota" -d 'Quota usage per account (bytes and files stored and reserved, limits), all or one user\'s; `ctl quota rescan USER` counts that user\'s root again (for files changed outside the server)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and not __fish_seen_subcommand_from sessions kick bans ban unban reload drain status user quota help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from sessions" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l user -d 'Kick every session logged in as this user' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from kick" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from bans" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l for -d 'How long ("30m", "1h", "2d")' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from ban" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from unban" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from reload" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from drain" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -f -a "add" -d 'Add a [[users]] entry; the password is prompted (or read from stdin) and stored as an argon2id hash'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -f -a "passwd" -d 'Set a user\'s password (prompted, or read from stdin)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -f -a "disable" -d 'Refuse every login of a user (`disabled = true`) until enabled'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -f -a "enable" -d 'Let a disabled user log in again (removes `disabled`)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -f -a "del" -d 'Delete a user\'s [[users]] entry (its files stay)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from user" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -l config -d 'Config file whose `[control] socket` to use' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -l socket -d 'The control socket\'s path (default: the config\'s, else /run/portcullis/control.sock)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -l url -d 'The TCP control listener instead of a socket: https://HOST:PORT' -r
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -l token-file -d 'With --url: the file holding the bearer token (the token alone, or a `NAME TOKEN` line as in control.token_file)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -l ca-file -d 'With --url: the CA certificates (PEM) to trust (default: the system\'s)' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -l json -d 'Print the server\'s JSON instead of a table'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -s h -l help -d 'Print help'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -a "rescan" -d 'Count the user\'s root again'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from quota" -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "sessions" -d 'List the sessions: id, node, user, client, since, idle time, command, transfer (with [cluster], every live node\'s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "kick" -d 'Close a session (the client gets 421; a transfer in flight is cut, an upload not kept), or with --user every session of a user'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "bans" -d 'List the bans in force (and limits.ban_exempt)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "ban" -d 'Ban an address (its sessions to come are refused with 421)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "unban" -d 'Lift an address\'s ban'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "reload" -d 'Reload the config file, as SIGHUP: says what changed and what needs a restart'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "drain" -d 'Drain the server, as SIGTERM: stop accepting, let transfers finish'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "status" -d 'Version, features, uptime, phase, listeners, counts'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "user" -d 'Add, change, disable, enable or delete a [[users]] entry of the config file (comments kept, validated before it is written), then ask the server to reload'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "quota" -d 'Quota usage per account (bytes and files stored and reserved, limits), all or one user\'s; `ctl quota rescan USER` counts that user\'s root again (for files changed outside the server)'
complete -c portcullis -n "__fish_portcullis_using_subcommand ctl; and __fish_seen_subcommand_from help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "serve" -d 'Run the server (without --config: anonymous read-only over --root, port 2121)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "gen-cert" -d 'Write a self-signed certificate and key (DIR/cert.pem, DIR/key.pem) for a quick FTPS start'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "hash-password" -d 'Read a password (prompt, or one line of stdin) and print its argon2id hash'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "firewall" -d 'Print the firewall rules the configuration needs'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "check-config" -d 'Validate a config file and explain each error; run as root, also check what the server\'s user must be able to read after the drop'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "doctor" -d 'Diagnose a server from the client side: log in, try PASV, EPSV, PORT and EPRT, and say which work and why the others do not'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "ctl" -d 'Ask a running server (its control socket): list and kick sessions, list, add and lift bans, reload, drain, status'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor ctl help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "sessions" -d 'List the sessions: id, node, user, client, since, idle time, command, transfer (with [cluster], every live node\'s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "kick" -d 'Close a session (the client gets 421; a transfer in flight is cut, an upload not kept), or with --user every session of a user'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "bans" -d 'List the bans in force (and limits.ban_exempt)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "ban" -d 'Ban an address (its sessions to come are refused with 421)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "unban" -d 'Lift an address\'s ban'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "reload" -d 'Reload the config file, as SIGHUP: says what changed and what needs a restart'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "drain" -d 'Drain the server, as SIGTERM: stop accepting, let transfers finish'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "status" -d 'Version, features, uptime, phase, listeners, counts'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "user" -d 'Add, change, disable, enable or delete a [[users]] entry of the config file (comments kept, validated before it is written), then ask the server to reload'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and __fish_seen_subcommand_from ctl" -f -a "quota" -d 'Quota usage per account (bytes and files stored and reserved, limits), all or one user\'s; `ctl quota rescan USER` counts that user\'s root again (for files changed outside the server)'
