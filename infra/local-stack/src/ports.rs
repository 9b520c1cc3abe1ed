//! Port choice for servers that must be told a number before they start.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

use crate::error::{Context, Error, Result};

/// A port nothing listens on right now: the kernel picks one for a throwaway
/// listener. Another process could take it before our server binds, which is
/// rare enough for a local stack; servers that can bind port 0 themselves
/// should be given 0 instead.
pub fn free_port() -> Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context(|| "looking for a free port on 127.0.0.1".into())?;
    let port = listener.local_addr().context(|| "reading the free port".into())?.port();
    Ok(port)
}

/// `port` when nothing listens on it, else an error naming the option that
/// chooses another. A fixed port already in use would otherwise surface as a
/// confusing failure of whichever server loses, or worse, a readiness probe
/// answered by the stranger on that port.
pub fn ensure_free(port: u16, option: &str) -> Result<u16> {
    match TcpListener::bind(loopback(port)) {
        Ok(_) => Ok(port),
        Err(error) => Err(Error::Setup(format!(
            "port {port} on 127.0.0.1 is not available ({error}); is another stack running? \
             Choose another with {option} (0 = any free port)"
        ))),
    }
}

/// `port`, or a free one when it is 0.
pub fn resolve(port: u16) -> Result<u16> {
    if port == 0 {
        free_port()
    } else {
        Ok(port)
    }
}

pub fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_free_port_can_be_bound() {
        let port = free_port().unwrap();
        assert_ne!(port, 0);
        TcpListener::bind(loopback(port)).expect("the port should be free");
    }

    #[test]
    fn a_port_in_use_is_reported_with_the_option_to_change_it() {
        let taken = TcpListener::bind(loopback(0)).unwrap();
        let port = taken.local_addr().unwrap().port();
        let error = ensure_free(port, "--http-port").unwrap_err().to_string();
        assert!(error.contains("--http-port"), "{error}");
        drop(taken);
        assert_eq!(ensure_free(port, "--http-port").unwrap(), port);
    }

    #[test]
    fn resolve_keeps_a_given_port() {
        assert_eq!(resolve(4321).unwrap(), 4321);
        assert_ne!(resolve(0).unwrap(), 0);
    }
}
