@{
    # The one declared list of what HubDr's build tasks install on a Debian/Ubuntu machine (besides the .NET SDK,
    # Node.js/npm and apt, which a machine must already have). build.ps1 installs it EVERY time a task runs:
    # `apt-get install` and `npm ci` are idempotent, so a machine that has everything only pays a few seconds, and a
    # machine that has some of it gets the rest. Nothing is installed "only when a command is missing".
    #
    #   Demo   -> Apt.Demo
    #   Test   -> Apt.Demo + Apt.Test, then Npm (the storage emulators, from tests/emulators/package-lock.json)
    #   Bench  -> Apt.Demo + Apt.Test + Apt.Bench, then Npm
    #
    # Windows has no apt: build.ps1 prints the Windows equivalents (WindowsHints) instead of installing anything.
    Apt = @{
        # gpg/tar/gzip/zstd: break-glass and interop; sqlite3: the demo's sample hub and SQLite break-glass.
        Demo  = @('ca-certificates', 'gnupg', 'tar', 'gzip', 'zstd', 'sqlite3')
        # Real database servers and clients, the AWS CLI (S3 interop test), promtool (metrics format test), curl
        # (emulator health checks), procps (ps/pkill in fault tests), iproute2 (ss), sudo/util-linux (su, setsid).
        Test  = @('postgresql', 'postgresql-client', 'postgresql-contrib', 'mariadb-server', 'mariadb-client',
                  'awscli', 'prometheus', 'curl', 'procps', 'iproute2', 'util-linux', 'libzstd1')
        # Baselines the benchmark compares against.
        Bench = @('restic', 'time', 'hyperfine')
    }

    # npm packages: the S3 (s3rver) and Azure Blob (Azurite) emulators, pinned by tests/emulators/package-lock.json.
    Npm = @('tests/emulators')

    WindowsHints = @(
        'gpg: winget install GnuPG.GnuPG (or Gpg4win)'
        'tar: ships with Windows 10 1803+ (C:\Windows\System32\tar.exe)'
        'zstd: winget install Meta.Zstandard (only for break-glass of zstd archives)'
        'sqlite3: winget install SQLite.SQLite'
        'PostgreSQL client tools (pg_dump, pg_restore, psql): the EDB installer, https://www.postgresql.org/download/windows/'
        'MariaDB client tools (mariadb-dump, mariadb): the MariaDB MSI, https://mariadb.org/download/'
        'Node.js 20+ for the storage emulators: winget install OpenJS.NodeJS.LTS'
    )
}
