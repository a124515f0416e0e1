//! Reading the `authorization` metadata: the token out of `Bearer <token>`, before anything looks inside it.

use super::Rejection;

/// Far above any real token; bounds the work a caller can make us do before a signature is checked.
pub(super) const MAX_AUTHORIZATION_BYTES: usize = 16 * 1024;

const MISSING_MESSAGE: &str = "missing `authorization: Bearer <token>` metadata";
const NOT_BEARER_MESSAGE: &str = "authorization metadata must be `Bearer <token>`";

/// The token of the raw `authorization` value (`None` when the metadata is absent).
pub(super) fn bearer_token(authorization: Option<&[u8]>) -> Result<&str, Rejection> {
    let raw = authorization.ok_or_else(|| Rejection::new(MISSING_MESSAGE))?;
    if raw.len() > MAX_AUTHORIZATION_BYTES {
        return Err(Rejection::new(format!(
            "authorization metadata is longer than {MAX_AUTHORIZATION_BYTES} bytes"
        )));
    }
    let value = std::str::from_utf8(raw)
        .ok()
        .filter(|value| value.is_ascii())
        .ok_or_else(|| Rejection::new(NOT_BEARER_MESSAGE))?;
    let (scheme, rest) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| Rejection::new(NOT_BEARER_MESSAGE))?;
    let token = rest.trim_start_matches(' ');
    let well_formed = scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.bytes().all(|b| b.is_ascii_graphic());
    if well_formed {
        Ok(token)
    } else {
        Err(Rejection::new(NOT_BEARER_MESSAGE))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;

    #[test]
    fn header_must_be_bearer() {
        let auth = authenticator(&hs_config());
        let token = hs256(&claims("admin"));
        assert_eq!(
            auth.authenticate(None).unwrap_err().message(),
            "missing `authorization: Bearer <token>` metadata"
        );
        for value in [
            format!("Basic {token}"),
            token.clone(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            format!("Bearer {token} extra"),
        ] {
            let rejection = auth.authenticate(Some(value.as_bytes())).unwrap_err();
            assert_eq!(
                rejection.message(),
                "authorization metadata must be `Bearer <token>`"
            );
        }
        let rejection = auth.authenticate(Some(b"Bearer \xff\xfe")).unwrap_err();
        assert_eq!(
            rejection.message(),
            "authorization metadata must be `Bearer <token>`"
        );
        let rejection = auth
            .authenticate(Some("Bearer tökén".as_bytes()))
            .unwrap_err();
        assert_eq!(
            rejection.message(),
            "authorization metadata must be `Bearer <token>`"
        );

        let lenient = format!("bEaReR   {token}");
        assert!(auth.authenticate(Some(lenient.as_bytes())).is_ok());
    }
}
