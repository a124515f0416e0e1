//! Command-line flags with environment-variable fallbacks: the one place configuration is read.

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use clap::{Args, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::store::ConnectSettings;

/// Default SQLite file, created next to the working directory on first start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ticketd.db?mode=rwc";

/// Default gRPC address: where `serve` listens and where `healthcheck` asks.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// `ticketd`: serves the ticket API (the default) or applies migrations.
#[derive(Debug, Parser)]
#[command(
    name = "ticketd",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags of `serve`, accepted without the subcommand name since serving is the default.
    #[command(flatten)]
    pub serve: ServeConfig,
}

/// What the binary does.
// `Serve` is much larger than the others; the value is built once per process, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve gRPC (the default).
    Serve(ServeConfig),
    /// Ask a running server whether it is SERVING (for container health checks); exit 0 if so, 1 if not.
    Healthcheck {
        /// The server's gRPC address.
        #[arg(long, default_value = DEFAULT_LISTEN)]
        addr: String,
        /// The service to ask about; empty means the whole server.
        #[arg(long, default_value = "")]
        service: String,
        /// Give up after this many seconds.
        #[arg(long = "timeout-secs", default_value = "5", value_parser = parse_seconds)]
        timeout: Duration,
    },
    /// Print an HS256 token signed with the server's secret (for tests and scripts; use your identity provider in
    /// production).
    Token(TokenArgs),
    /// Apply pending migrations and exit.
    Migrate {
        #[command(flatten)]
        database: DatabaseConfig,
        #[command(flatten)]
        log: LogConfig,
    },
}

impl Cli {
    /// The command to run, `serve` when none was named.
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// Everything `serve` needs.
#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address the gRPC server listens on (gRPC, gRPC-Web, health and reflection share it): `HOST:PORT`, the
    /// host an IP address or a name resolved at start-up.
    #[arg(long, env = "TICKETD_LISTEN", default_value = DEFAULT_LISTEN, value_parser = parse_listen)]
    pub listen: SocketAddr,
    /// How long in-flight calls may run after SIGTERM/SIGINT before the server stops anyway (seconds).
    #[arg(long = "drain-timeout-secs", env = "TICKETD_DRAIN_TIMEOUT_SECS", default_value = "30", value_parser = parse_seconds)]
    pub drain_timeout: Duration,
    /// Address of the Prometheus `/metrics` endpoint (HTTP); off unless set.
    #[arg(long = "metrics-listen", env = "TICKETD_METRICS_LISTEN", value_parser = parse_listen)]
    pub metrics_listen: Option<SocketAddr>,
    /// Serve the browser app (`web/`) at `/` on the gRPC port; `--web=false` turns it off.
    #[arg(long, env = "TICKETD_WEB", default_value_t = true, action = clap::ArgAction::Set)]
    pub web: bool,
    /// Longest a call may take when the client sets no shorter `grpc-timeout` (seconds).
    #[arg(long = "request-timeout-secs", env = "TICKETD_REQUEST_TIMEOUT_SECS", default_value = "30", value_parser = parse_seconds)]
    pub request_timeout: Duration,
    /// Largest request message accepted, in bytes; larger ones are refused before they are buffered.
    #[arg(long = "max-message-bytes", env = "TICKETD_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024, value_parser = clap::value_parser!(u32).range(1024..=64 * 1024 * 1024))]
    pub max_message_bytes: u32,
    /// Calls answered at once before new ones are refused with RESOURCE_EXHAUSTED (streams count until open).
    #[arg(long = "max-concurrent-requests", env = "TICKETD_MAX_CONCURRENT_REQUESTS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_requests: u32,
    /// How long a `request_id` is remembered: a retry within this window gets the first answer (hours).
    #[arg(long = "request-id-ttl-hours", env = "TICKETD_REQUEST_ID_TTL_HOURS", default_value = "24", value_parser = parse_hours)]
    pub request_id_ttl: Duration,
    /// Let webhooks target loopback, private and link-local addresses (local development, tests). Off in
    /// production: a webhook URL is chosen by an admin but fetched from inside the cluster (SSRF).
    #[arg(
        long = "webhook-allow-private-targets",
        env = "TICKETD_WEBHOOK_ALLOW_PRIVATE_TARGETS"
    )]
    pub webhook_allow_private_targets: bool,
    /// Browser origins (`scheme://host[:port]`, comma-separated) that may call the API cross-origin over
    /// gRPC-Web; none when unset.
    #[arg(
        long = "cors-allowed-origins",
        env = "TICKETD_CORS_ALLOWED_ORIGINS",
        default_value = "",
        hide_default_value = true,
        value_parser = CorsOrigins::parse
    )]
    pub cors_allowed_origins: CorsOrigins,
    /// Seconds of silence after which WatchTickets and WatchCard send a heartbeat message.
    #[arg(long = "stream-heartbeat-secs", env = "TICKETD_STREAM_HEARTBEAT_SECS", default_value = "20", value_parser = parse_positive_seconds)]
    pub stream_heartbeat: Duration,
    #[command(flatten)]
    pub database: DatabaseConfig,
    #[command(flatten)]
    pub log: LogConfig,
    #[command(flatten)]
    pub auth: AuthConfig,
}

/// The origins allowed cross-origin access; empty: none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CorsOrigins(Vec<CorsOrigin>);

impl CorsOrigins {
    /// A comma-separated list of origins; empty entries are skipped, so an empty variable (as deployment
    /// templates write an unset value) means none.
    pub fn parse(value: &str) -> Result<Self, String> {
        value
            .split(',')
            .filter(|origin| !origin.trim().is_empty())
            .map(CorsOrigin::parse)
            .collect()
    }
}

impl std::ops::Deref for CorsOrigins {
    type Target = [CorsOrigin];

    fn deref(&self) -> &[CorsOrigin] {
        &self.0
    }
}

impl FromIterator<CorsOrigin> for CorsOrigins {
    fn from_iter<I: IntoIterator<Item = CorsOrigin>>(origins: I) -> Self {
        Self(origins.into_iter().collect())
    }
}

/// An origin allowed cross-origin access: `scheme://host[:port]`, exactly as a browser sends it in `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsOrigin(String);

impl CorsOrigin {
    /// Accepts `http(s)://host[:port]` with nothing after the authority: browsers compare origins byte for
    /// byte, so a trailing slash or a path would silently match nothing.
    pub fn parse(value: &str) -> Result<Self, String> {
        let value = value.trim();
        let bad = |why: &str| {
            Err(format!(
                "{value:?} is not an origin ({why}); expected scheme://host[:port]"
            ))
        };
        let Some((scheme, authority)) = value.split_once("://") else {
            return bad("no scheme");
        };
        if !matches!(scheme, "http" | "https") {
            return bad("the scheme must be http or https");
        }
        if authority.is_empty() {
            return bad("no host");
        }
        if authority.contains(['/', '?', '#']) {
            return bad("an origin has no path, query or fragment, not even a trailing slash");
        }
        if authority.contains('@') {
            return bad("an origin has no user name");
        }
        if value.chars().any(|c| c.is_ascii_uppercase()) {
            return bad("browsers send origins in lower case");
        }
        let (host, port) = match authority.rsplit_once(':') {
            // `[::1]` without a port: the last colon is inside the brackets.
            Some((host, port)) if !port.ends_with(']') => (host, Some(port)),
            _ => (authority, None),
        };
        if host.is_empty() {
            return bad("no host");
        }
        if let Some(port) = port
            && port.parse::<u16>().is_err()
        {
            return bad("the port must be a number up to 65535");
        }
        if http::HeaderValue::from_str(value).is_err() || value.chars().any(char::is_whitespace) {
            return bad("it holds characters a header cannot carry");
        }
        Ok(Self(value.to_owned()))
    }

    /// The origin as a browser sends it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ServeConfig {
    /// Defaults for everything but the listen address and database, ignoring the environment (used by tests).
    pub fn new(listen: SocketAddr, database_url: impl Into<String>) -> Self {
        let mut config: Self = clap_defaults();
        config.listen = listen;
        config.database.url = database_url.into();
        config
    }
}

/// What the clap attributes of `T` give when no flag is passed, ignoring the environment: the attributes are
/// the only place a default is written down.
fn clap_defaults<T: Args + FromArgMatches>() -> T {
    // Without its variables: a DATABASE_URL or TICKETD_AUTH in the test runner's environment must not leak
    // into a test's configuration.
    let command = T::augment_args(clap::Command::new("defaults").no_binary_name(true))
        .mut_args(|arg| arg.env(None));
    let matches = command
        .try_get_matches_from(std::iter::empty::<&str>())
        .expect(
            "no flags and no variables: only the attributes' defaults, which their parsers accept",
        );
    T::from_arg_matches(&matches).expect("matches built from T's own arguments")
}

/// What `ticketd token` puts in the token.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The caller's id (`sub`).
    #[arg(long)]
    pub sub: String,
    /// `admin`, `agent`, `service` or `customer`.
    #[arg(long)]
    pub role: String,
    /// Organization id (`org`).
    #[arg(long, default_value = "")]
    pub org: String,
    /// E-mail address (`email`).
    #[arg(long, default_value = "")]
    pub email: String,
    /// Portal id (`portal`), required for customers.
    #[arg(long)]
    pub portal: Option<i64>,
    /// Space-separated scopes for services, e.g. `tickets:read tickets:write`.
    #[arg(long, default_value = "")]
    pub scope: String,
    /// How long the token is valid (seconds).
    #[arg(long = "ttl-secs", default_value_t = 3600)]
    pub ttl_secs: i64,
    /// `iss` claim (match the server's `--jwt-issuer`).
    #[arg(long = "jwt-issuer", env = "TICKETD_JWT_ISSUER")]
    pub issuer: Option<String>,
    /// `aud` claim (match the server's `--jwt-audience`).
    #[arg(long = "jwt-audience", env = "TICKETD_JWT_AUDIENCE")]
    pub audience: Option<String>,
    /// The secret, from the same flags and variables the server reads.
    #[arg(
        long = "jwt-hs256-secret",
        env = "TICKETD_JWT_HS256_SECRET",
        hide_env_values = true
    )]
    pub secret: Option<String>,
    #[arg(
        long = "jwt-hs256-secret-file",
        env = "TICKETD_JWT_HS256_SECRET_FILE",
        conflicts_with = "secret"
    )]
    pub secret_file: Option<PathBuf>,
}

/// How callers prove who they are.
#[derive(Debug, Clone, Args)]
pub struct AuthConfig {
    /// `none`: every caller is an admin (loopback only, for the quick start); `jwt`: bearer JWTs and API keys.
    #[arg(long = "auth", env = "TICKETD_AUTH", value_enum, default_value_t)]
    pub mode: AuthMode,
    /// Serve with `--auth none` on a non-loopback address anyway (anyone who can reach the port is an admin).
    #[arg(
        long = "allow-insecure-auth-none",
        env = "TICKETD_ALLOW_INSECURE_AUTH_NONE"
    )]
    pub allow_insecure_none: bool,
    /// Shared secret for HS256 tokens (prefer the `_FILE` form: environment variables leak into process listings).
    #[arg(
        long = "jwt-hs256-secret",
        env = "TICKETD_JWT_HS256_SECRET",
        hide_env_values = true
    )]
    pub jwt_hs256_secret: Option<String>,
    /// File holding the HS256 secret (surrounding white space is ignored).
    #[arg(
        long = "jwt-hs256-secret-file",
        env = "TICKETD_JWT_HS256_SECRET_FILE",
        conflicts_with = "jwt_hs256_secret"
    )]
    pub jwt_hs256_secret_file: Option<PathBuf>,
    /// RS256/ES256 verification keys: a PEM file (one or more public keys) or a JWKS JSON file.
    #[arg(long = "jwt-public-keys-file", env = "TICKETD_JWT_PUBLIC_KEYS_FILE")]
    pub jwt_public_keys_file: Option<PathBuf>,
    /// Required `iss` claim; unchecked when unset.
    #[arg(long = "jwt-issuer", env = "TICKETD_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim; unchecked when unset.
    #[arg(long = "jwt-audience", env = "TICKETD_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// JSON file of static API keys, stored as SHA-256 hashes (see the README); accepted in `jwt` mode.
    #[arg(long = "api-keys-file", env = "TICKETD_API_KEYS_FILE")]
    pub api_keys_file: Option<PathBuf>,
    /// The same JSON as `--api-keys-file`, inline (for platforms that inject secrets as variables).
    #[arg(
        long = "api-keys",
        env = "TICKETD_API_KEYS",
        hide_env_values = true,
        conflicts_with = "api_keys_file"
    )]
    pub api_keys: Option<String>,
}

impl Default for AuthConfig {
    /// The flags' defaults, ignoring the environment.
    fn default() -> Self {
        clap_defaults()
    }
}

/// Authentication mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum AuthMode {
    /// No credentials: every caller is an admin.
    #[default]
    None,
    /// Bearer JWTs (HS256, RS256, ES256) and static API keys.
    Jwt,
}

/// Where the data lives.
#[derive(Debug, Clone, Args)]
pub struct DatabaseConfig {
    /// `sqlite://PATH?mode=rwc` (embedded, one replica) or `postgres://USER@HOST/DB` (production, any replicas).
    #[arg(long = "database-url", env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub url: String,
    /// Connections kept per replica. PostgreSQL's `max_connections` must cover this times the replica count.
    #[arg(long = "database-max-connections", env = "TICKETD_DATABASE_MAX_CONNECTIONS", default_value_t = DatabaseConfig::DEFAULT_MAX_CONNECTIONS, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_connections: u32,
}

impl DatabaseConfig {
    /// Enough for a 2-core replica: more connections than cores mostly add lock contention.
    pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;

    /// What the store needs from these flags to connect.
    pub fn connect_settings(&self) -> ConnectSettings {
        ConnectSettings {
            url: self.url.clone(),
            max_connections: self.max_connections,
        }
    }
}

/// How logs are written.
#[derive(Debug, Clone, Args)]
pub struct LogConfig {
    /// Log filter in `tracing` env-filter syntax, e.g. `info` or `ticketd=debug,sqlx=warn`.
    #[arg(long = "log-level", env = "TICKETD_LOG", default_value = "info")]
    pub level: String,
    /// `text` for people, `json` for log pipelines.
    #[arg(long = "log-format", env = "TICKETD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub format: LogFormat,
}

impl Default for LogConfig {
    /// The flags' defaults, ignoring the environment.
    fn default() -> Self {
        clap_defaults()
    }
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

fn parse_hours(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(hours) if hours > 0 => Ok(Duration::from_secs(hours * 3600)),
        _ => Err(format!(
            "expected a positive whole number of hours, got {value:?}"
        )),
    }
}

fn parse_positive_seconds(value: &str) -> Result<Duration, String> {
    match value.parse::<u64>() {
        Ok(seconds) if seconds > 0 => Ok(Duration::from_secs(seconds)),
        _ => Err(format!(
            "expected a positive whole number of seconds, got {value:?}"
        )),
    }
}

/// `HOST:PORT`, resolving a host name now, so that a server starts on `localhost:50051` and a name that does
/// not resolve stops it at once. Of several addresses the first IPv4 one is taken, as `127.0.0.1` is the
/// default and IPv4 is what every client tries.
fn parse_listen(value: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = value.parse() {
        return Ok(address);
    }
    if value
        .rsplit_once(':')
        .is_none_or(|(host, port)| host.is_empty() || port.parse::<u16>().is_err())
    {
        return Err(format!("expected HOST:PORT, got {value:?}"));
    }
    let addresses: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(value)
        .map_err(|error| format!("cannot resolve {value:?}: {error}"))?
        .collect();
    addresses
        .iter()
        .find(|address| address.is_ipv4())
        .or(addresses.first())
        .copied()
        .ok_or_else(|| format!("{value:?} resolves to no address"))
}

fn parse_seconds(value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_secs)
        .map_err(|_| format!("expected a whole number of seconds, got {value:?}"))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn flags_are_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_come_from_the_flags() {
        let listen: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let config = ServeConfig::new(listen, "sqlite::memory:");
        assert_eq!(config.listen, listen);
        assert_eq!(config.database.url, "sqlite::memory:");
        assert_eq!(
            config.database.max_connections,
            DatabaseConfig::DEFAULT_MAX_CONNECTIONS
        );
        assert_eq!(config.auth.mode, AuthMode::None);
        assert_eq!(LogConfig::default().format, LogFormat::Text);
        assert!(config.web, "the browser app is served by default");
        assert!(config.cors_allowed_origins.is_empty());
        assert_eq!(config.stream_heartbeat, Duration::from_secs(20));
    }

    #[test]
    fn listen_takes_host_names() {
        assert_eq!(
            parse_listen("localhost:50051"),
            Ok("127.0.0.1:50051".parse().unwrap())
        );
        assert_eq!(parse_listen("[::1]:7"), Ok("[::1]:7".parse().unwrap()));
        assert!(parse_listen("localhost").is_err());
        assert!(parse_listen("no-such-host.invalid:1").is_err());
    }

    #[test]
    fn origins_are_exact() {
        for good in [
            "https://app.example.com",
            "http://localhost:5173",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
        ] {
            assert_eq!(CorsOrigin::parse(good).map(|o| o.0), Ok(good.to_owned()));
        }
        for bad in [
            "app.example.com",
            "https://app.example.com/",
            "https://app.example.com/web",
            "ftp://app.example.com",
            "https://",
            "https://:80",
            "https://app.example.com:http",
            "https://App.example.com",
            "https://user@app.example.com",
            "*",
        ] {
            assert!(CorsOrigin::parse(bad).is_err(), "{bad} must be refused");
        }
    }

    #[test]
    fn cors_origins_are_a_comma_separated_list() {
        let cli = Cli::try_parse_from([
            "ticketd",
            "--cors-allowed-origins",
            "https://a.example,http://localhost:5173",
        ])
        .unwrap();
        let Command::Serve(config) = cli.into_command() else {
            panic!("serve is the default command");
        };
        let origins: Vec<&str> = config
            .cors_allowed_origins
            .iter()
            .map(CorsOrigin::as_str)
            .collect();
        assert_eq!(origins, ["https://a.example", "http://localhost:5173"]);
        let error =
            Cli::try_parse_from(["ticketd", "--cors-allowed-origins", "https://a.example/"])
                .unwrap_err()
                .to_string();
        assert!(error.contains("--cors-allowed-origins"), "{error}");
    }

    #[test]
    fn web_false_turns_the_browser_app_off() {
        let cli = Cli::try_parse_from(["ticketd", "--web=false"]).expect("--web=false parses");
        assert!(!cli.serve.web);
    }
}
