//! Secrets and unique names from the kernel's CSPRNG (getrandom(2)).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub fn bytes(len: usize) -> Vec<u8> {
    let mut buffer = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        // SAFETY: the pointer and length describe the unfilled tail of `buffer`.
        let got = unsafe { libc::getrandom(buffer[filled..].as_mut_ptr().cast(), len - filled, 0) };
        if got < 0 {
            let error = std::io::Error::last_os_error();
            assert_eq!(
                error.kind(),
                std::io::ErrorKind::Interrupted,
                "getrandom failed: {error}"
            );
            continue;
        }
        filled += got as usize;
    }
    buffer
}

/// Lowercase hex: safe in URLs, SQL literals and identifiers.
pub fn hex(len_bytes: usize) -> String {
    bytes(len_bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// URL-safe base64 without padding: printable, compact.
pub fn base64url(len_bytes: usize) -> String {
    URL_SAFE_NO_PAD.encode(bytes(len_bytes))
}

#[cfg(test)]
mod tests {
    #[test]
    fn values_have_the_asked_size_and_differ() {
        assert_eq!(super::hex(6).len(), 12);
        assert_eq!(super::base64url(48).len(), 64);
        assert_ne!(super::bytes(32), super::bytes(32));
    }
}
