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
complete -c portcullis -n "__fish_portcullis_needs_command" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l config -d 'Config file (TOML); the flags below override it' -r -F
complete -c portcullis -n "__fish_portcullis_using_subcommand serve" -l root -d 'Directory to serve to anonymous users when no config file is given (default: the current directory; created if missing), or an object-store root "s3://BUCKET/PREFIX" (the store from AWS_ENDPOINT_URL, AWS_REGION, AWS_ALLOW_HTTP and the AWS credential variables)' -r -F
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
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "serve" -d 'Run the server (without --config: anonymous read-only over --root, port 2121)'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "gen-cert" -d 'Write a self-signed certificate and key (DIR/cert.pem, DIR/key.pem) for a quick FTPS start'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "hash-password" -d 'Read a password (prompt, or one line of stdin) and print its argon2id hash'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "firewall" -d 'Print the firewall rules the configuration needs'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "check-config" -d 'Validate a config file and explain each error; run as root, also check what the server\'s user must be able to read after the drop'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "doctor" -d 'Diagnose a server from the client side: log in, try PASV, EPSV, PORT and EPRT, and say which work and why the others do not'
complete -c portcullis -n "__fish_portcullis_using_subcommand help; and not __fish_seen_subcommand_from serve gen-cert hash-password firewall check-config doctor help" -f -a "help" -d 'Print this message or the help of the given subcommand(s)'
