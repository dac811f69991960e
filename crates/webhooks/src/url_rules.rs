//! Which URLs a webhook may point at (see the crate documentation for the rules).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::Url;

/// The shortest accepted URL, in characters.
pub const MIN_URL_LEN: usize = 8;
/// The longest accepted URL, in characters.
pub const MAX_URL_LEN: usize = 200;

/// Why a URL was refused; the message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Shorter than [`MIN_URL_LEN`] or longer than [`MAX_URL_LEN`].
    #[error("must be {MIN_URL_LEN} to {MAX_URL_LEN} characters long, got {0}")]
    Length(usize),
    /// Not an absolute URL.
    #[error("is not an absolute URL: {0}")]
    Syntax(String),
    /// Not `https` (or `http` to loopback where allowed).
    #[error("must use https, got the scheme {0:?}")]
    Scheme(String),
    /// `http` to anything but loopback, or to loopback without the permission.
    #[error("may use http only to a loopback address when insecure loopback is allowed")]
    Insecure,
    /// `user:password@` in the URL.
    #[error("must not contain user information (use the authentication header instead)")]
    UserInfo,
    /// A fragment (`#...`), which is never sent.
    #[error("must not contain a fragment")]
    Fragment,
    /// No host.
    #[error("has no host")]
    NoHost,
    /// The host is an address in a range the gateway never calls.
    #[error("points at a {0} address, which webhooks may not call")]
    ForbiddenAddress(&'static str),
    /// The operator's allowlist does not name the host.
    #[error("has the host {0:?}, which this deployment's allowed hosts do not include")]
    HostNotAllowed(String),
}

/// The URL policy: whether plain http to loopback is acceptable (demo and tests), and the
/// operator's allowlist of hosts.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    /// Accept `http://` and loopback addresses (127.0.0.0/8, ::1, `localhost`).
    pub allow_insecure_loopback: bool,
    /// When not empty, the only hosts webhooks may call: exact names or IP literals
    /// (case-insensitive), or `*.example.com` for any subdomain of `example.com`. The other
    /// rules apply on top.
    pub allowed_hosts: Vec<String>,
}

impl UrlPolicy {
    /// Checks `url` against the rules and returns it parsed.
    pub fn check(&self, url: &str) -> Result<Url, UrlError> {
        check_url(url, self)
    }

    /// Whether the allowlist (if any) admits `host` (as the URL parser normalized it).
    fn admits(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.allowed_hosts.is_empty()
            || self.allowed_hosts.iter().any(|allowed| {
                let allowed = allowed.trim().to_ascii_lowercase();
                let allowed = allowed.trim_start_matches('[').trim_end_matches(']');
                match allowed.strip_prefix("*.") {
                    Some(domain) => host.ends_with(&format!(".{domain}")),
                    None => host == allowed,
                }
            })
    }
}

/// Whether a host name means this machine.
fn is_localhost_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// The forbidden range an address falls in, if any. Loopback is reported as `"loopback"`.
pub fn forbidden_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => forbidden_v4(v4),
            None => forbidden_v6(v6),
        },
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip == Ipv4Addr::new(169, 254, 169, 254) {
        Some("cloud metadata")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() || a >= 240 {
        Some("reserved")
    } else if a == 100 && (64..128).contains(&b) {
        Some("shared (carrier-grade NAT)")
    } else {
        None
    }
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if first & 0xffc0 == 0xfe80 {
        Some("link-local")
    } else if first & 0xfe00 == 0xfc00 {
        Some("private (unique local)")
    } else if ip == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
        Some("cloud metadata")
    } else {
        None
    }
}

/// Checks a webhook URL (see the crate documentation for the rules) and returns it parsed.
pub fn check_url(url: &str, policy: &UrlPolicy) -> Result<Url, UrlError> {
    let length = url.chars().count();
    if !(MIN_URL_LEN..=MAX_URL_LEN).contains(&length) {
        return Err(UrlError::Length(length));
    }
    let parsed = Url::parse(url).map_err(|err| UrlError::Syntax(err.to_string()))?;
    let scheme = parsed.scheme().to_owned();
    if scheme != "https" && scheme != "http" {
        return Err(UrlError::Scheme(scheme));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(UrlError::UserInfo);
    }
    if parsed.fragment().is_some() {
        return Err(UrlError::Fragment);
    }
    let loopback = match parsed.host() {
        None => return Err(UrlError::NoHost),
        Some(url::Host::Domain(name)) => is_localhost_name(name),
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), policy)?,
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), policy)?,
    };
    let host = parsed.host_str().unwrap_or_default();
    if !policy.admits(host) {
        return Err(UrlError::HostNotAllowed(host.to_string()));
    }
    if loopback && !policy.allow_insecure_loopback {
        return Err(UrlError::ForbiddenAddress("loopback"));
    }
    if scheme == "http" && !(loopback && policy.allow_insecure_loopback) {
        return Err(UrlError::Insecure);
    }
    Ok(parsed)
}

/// Whether an IP literal is loopback; an error when it is in any other forbidden range.
fn check_ip(ip: IpAddr, policy: &UrlPolicy) -> Result<bool, UrlError> {
    match forbidden_range(ip) {
        None => Ok(false),
        Some("loopback") if policy.allow_insecure_loopback => Ok(true),
        Some(range) => Err(UrlError::ForbiddenAddress(range)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: UrlPolicy =
        UrlPolicy { allow_insecure_loopback: false, allowed_hosts: Vec::new() };
    const LOOPBACK: UrlPolicy =
        UrlPolicy { allow_insecure_loopback: true, allowed_hosts: Vec::new() };

    #[test]
    fn https_to_public_hosts_is_accepted() {
        for url in [
            "https://example.com/hooks",
            "https://hooks.example.com:8443/enode?x=1",
            "https://93.184.216.34/h",
            "https://[2606:2800:220:1:248:1893:25c8:1946]/h",
        ] {
            assert!(check_url(url, &STRICT).is_ok(), "{url}");
            assert!(check_url(url, &LOOPBACK).is_ok(), "{url}");
        }
    }

    #[test]
    fn http_only_to_loopback_and_only_when_allowed() {
        assert_eq!(check_url("http://example.com/h", &STRICT), Err(UrlError::Insecure));
        assert_eq!(check_url("http://example.com/h", &LOOPBACK), Err(UrlError::Insecure));
        for url in ["http://127.0.0.1:8080/h", "http://localhost:9/h", "http://[::1]:80/h"] {
            assert!(check_url(url, &LOOPBACK).is_ok(), "{url}");
            assert_eq!(
                check_url(url, &STRICT),
                Err(UrlError::ForbiddenAddress("loopback")),
                "{url}"
            );
        }
        assert!(check_url("https://127.0.0.1/h", &LOOPBACK).is_ok());
        assert!(check_url("https://127.0.0.1/h", &STRICT).is_err());
    }

    #[test]
    fn internal_addresses_are_refused_even_with_loopback_allowed() {
        for (url, range) in [
            ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
            ("https://10.0.0.8/h", "private"),
            ("https://172.16.5.4/h", "private"),
            ("https://192.168.1.1/h", "private"),
            ("https://169.254.1.1/h", "link-local"),
            ("https://224.0.0.1/h", "multicast"),
            ("https://0.0.0.0/h", "unspecified"),
            ("https://100.64.0.1/h", "shared (carrier-grade NAT)"),
            ("https://[fe80::1]/h", "link-local"),
            ("https://[fd12::1]/h", "private (unique local)"),
            ("https://[::]/h", "unspecified"),
            ("https://[ff02::1]/h", "multicast"),
            ("https://[::ffff:10.0.0.1]/h", "private"),
            ("https://[::ffff:169.254.169.254]/h", "cloud metadata"),
        ] {
            assert_eq!(check_url(url, &LOOPBACK), Err(UrlError::ForbiddenAddress(range)), "{url}");
        }
        // Decimal and hex spellings of an address are normalized by the parser first.
        assert_eq!(
            check_url("https://2852039166/h", &STRICT),
            Err(UrlError::ForbiddenAddress("cloud metadata"))
        );
        assert_eq!(
            check_url("https://0x7f000001/h", &STRICT),
            Err(UrlError::ForbiddenAddress("loopback"))
        );
    }

    #[test]
    fn malformed_or_odd_urls_are_refused() {
        assert_eq!(check_url("https:/", &STRICT), Err(UrlError::Length(7)));
        let long = format!("https://example.com/{}", "a".repeat(181));
        assert_eq!(check_url(&long, &STRICT), Err(UrlError::Length(201)));
        assert!(matches!(check_url("not a url at all", &STRICT), Err(UrlError::Syntax(_))));
        assert_eq!(check_url("ftp://example.com/x", &STRICT), Err(UrlError::Scheme("ftp".into())));
        assert_eq!(check_url("file:///etc/passwd", &STRICT), Err(UrlError::Scheme("file".into())));
        assert_eq!(check_url("https://me:pw@example.com/", &STRICT), Err(UrlError::UserInfo));
        assert_eq!(check_url("https://me@example.com/", &STRICT), Err(UrlError::UserInfo));
        assert_eq!(check_url("https://example.com/#frag", &STRICT), Err(UrlError::Fragment));
    }
}

#[cfg(test)]
mod allowlist {
    use super::*;

    fn only(hosts: &[&str]) -> UrlPolicy {
        UrlPolicy {
            allow_insecure_loopback: true,
            allowed_hosts: hosts.iter().map(|h| h.to_string()).collect(),
        }
    }

    #[test]
    fn an_allowlist_admits_only_the_hosts_it_names() {
        let policy = only(&["hooks.example.com", "*.receiver.io", "127.0.0.1"]);
        for url in [
            "https://hooks.example.com/h",
            "https://HOOKS.example.com./h",
            "https://a.receiver.io/h",
            "https://a.b.receiver.io/h",
            "http://127.0.0.1:9000/h",
        ] {
            assert!(policy.check(url).is_ok(), "{url}");
        }
        for (url, host) in [
            ("https://example.com/h", "example.com"),
            ("https://receiver.io/h", "receiver.io"),
            ("https://evilreceiver.io/h", "evilreceiver.io"),
            ("http://localhost:9000/h", "localhost"),
        ] {
            assert_eq!(policy.check(url), Err(UrlError::HostNotAllowed(host.into())), "{url}");
        }
    }

    #[test]
    fn an_allowlist_never_lifts_the_other_rules() {
        let policy = UrlPolicy {
            allow_insecure_loopback: false,
            allowed_hosts: vec!["10.0.0.1".into(), "hooks.example.com".into()],
        };
        assert_eq!(policy.check("https://10.0.0.1/h"), Err(UrlError::ForbiddenAddress("private")));
        assert_eq!(policy.check("http://hooks.example.com/h"), Err(UrlError::Insecure));
    }
}
