//! Small HTTP helpers every vendor simulator needs: rendering the `Truncated` fault and
//! decoding form and query strings the way the vendors' servers do.

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

    #[tokio::test]
    async fn truncates_bodies_in_half() {
        let response = Response::new(Body::from("0123456789"));
        let cut = truncate(response).await;
        let bytes = axum::body::to_bytes(cut.into_body(), usize::MAX).await.unwrap();
        assert_eq!(&bytes[..], b"01234");
    }
}
