//! Small HTTP helpers every vendor simulator needs: rendering the `Truncated` fault,
//! decoding form and query strings the way the vendors' servers do, and the pieces of an
//! OAuth authorize page (the login form a user fills in, the redirect back to the client).

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::header;
use axum::response::Response;

/// The `Truncated` fault: the real answer with its body cut in half, still a well-framed
/// HTTP response (so a client sees a JSON error, not a transport error).
pub async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
    let cut = bytes.slice(..bytes.len() / 2);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

/// `+` and `%XX` decoding of one query or form component; an invalid escape stays as is.
pub fn url_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An `application/x-www-form-urlencoded` body or a query string as a map (last value wins).
pub fn parse_form(q: &str) -> BTreeMap<String, String> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (url_decode(k), url_decode(v))
        })
        .collect()
}

/// Minimal HTML escaping for text and attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The login page of a simulated authorize endpoint: a GET form back to `action` that
/// carries every authorize parameter as a hidden field plus the owner's login as
/// `login_hint`, with an "Allow" and a "Deny" (`decision=deny`) button. `message` is shown
/// above the form (an unknown login, say).
pub fn authorize_form(
    vendor: &str,
    action: &str,
    params: &BTreeMap<String, String>,
    message: Option<&str>,
) -> String {
    let hidden: String = params
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "login_hint" | "decision"))
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                html_escape(k),
                html_escape(v)
            )
        })
        .collect();
    let message =
        message.map(|m| format!("<p class=\"error\">{}</p>", html_escape(m))).unwrap_or_default();
    let vendor = html_escape(vendor);
    format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{vendor} sign-in \
         (simulated)</title></head><body><h1>Sign in to {vendor}</h1>{message}\
         <form method=\"get\" action=\"{}\">{hidden}\
         <label>E-mail <input name=\"login_hint\" autocomplete=\"username\"></label>\
         <button name=\"decision\" value=\"allow\">Allow</button>\
         <button name=\"decision\" value=\"deny\">Deny</button></form></body></html>",
        html_escape(action)
    )
}

/// Percent-encodes one query component (everything but RFC 3986's unreserved characters).
pub fn url_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `redirect_uri` with `pairs` appended to its query, before any fragment (`None` when it
/// is not an absolute URL).
pub fn redirect_with(redirect_uri: &str, pairs: &[(&str, &str)]) -> Option<String> {
    let (base, fragment) = match redirect_uri.split_once('#') {
        Some((base, fragment)) => (base, Some(fragment)),
        None => (redirect_uri, None),
    };
    let (scheme, rest) = base.split_once("://")?;
    if scheme.is_empty() || rest.is_empty() || base.chars().any(char::is_whitespace) {
        return None;
    }
    let mut out = base.to_string();
    for (i, (k, v)) in pairs.iter().enumerate() {
        let sep = if i == 0 && !base.contains('?') { '?' } else { '&' };
        out.push(sep);
        out.push_str(&url_encode(k));
        out.push('=');
        out.push_str(&url_encode(v));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_forms() {
        let form = parse_form(
            "grant_type=refresh_token&redirect_uri=https%3A%2F%2Fx.example%2Fcb&a=b+c&bad=%zz&t=%4",
        );
        assert_eq!(form["grant_type"], "refresh_token");
        assert_eq!(form["redirect_uri"], "https://x.example/cb");
        assert_eq!(form["a"], "b c");
        assert_eq!(form["bad"], "%zz");
        assert_eq!(form["t"], "%4");
    }

    #[test]
    fn redirects_append_to_the_query() {
        let pairs = [("code", "a b&c"), ("state", "s")];
        assert_eq!(
            redirect_with("http://x.example/cb", &pairs).unwrap(),
            "http://x.example/cb?code=a%20b%26c&state=s"
        );
        assert_eq!(
            redirect_with("http://x.example/cb?k=1#top", &pairs).unwrap(),
            "http://x.example/cb?k=1&code=a%20b%26c&state=s#top"
        );
        assert_eq!(redirect_with("/relative", &pairs), None);
    }

    #[tokio::test]
    async fn truncates_bodies_in_half() {
        let response = Response::new(Body::from("0123456789"));
        let cut = truncate(response).await;
        let bytes = axum::body::to_bytes(cut.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"01234");
    }
}
