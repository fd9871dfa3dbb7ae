//! Connections to the directory: [`Connector`] opens one (TLS as
//! configured), [`Pool`] keeps up to `pool_size` of them bound as the
//! service account for the searches of search-then-bind.
//!
//! Why the user's own bind is not made on a pooled connection: a bind
//! changes who the whole connection is, so the connection would have to be
//! bound back as the service account before another login could search on
//! it (two more round trips, and a connection left as the user if that
//! rebind fails or the login's timeout cuts it). The user's bind gets a
//! connection of its own, closed after it; the pool saves the service
//! account's connect, TLS handshake and bind on every login.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use ldap3::{Ldap, LdapConnAsync, LdapConnSettings, LdapError};
use tokio::sync::{Semaphore, SemaphorePermit};

/// How to reach the directory.
pub(super) struct Connector {
    pub url: String,
    pub timeout: Duration,
    pub starttls: bool,
    /// For ldaps:// or StartTLS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

/// One open connection; its driver task ends when it is dropped.
pub(super) struct Conn {
    pub ldap: Ldap,
    _driver: AbortOnDrop,
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Connector {
    /// Connect (and StartTLS), not bound yet.
    pub async fn open(&self) -> Result<Conn, LdapError> {
        let mut settings = LdapConnSettings::new()
            .set_conn_timeout(self.timeout)
            .set_starttls(self.starttls);
        if let Some(config) = &self.tls {
            settings = settings.set_config(config.clone());
        }
        let (conn, ldap) = LdapConnAsync::with_settings(settings, &self.url).await?;
        // The connection's own task; it ends when the last handle is
        // dropped, or is aborted with the `Conn`.
        let driver = tokio::spawn(async move {
            let _ = conn.drive().await;
        });
        Ok(Conn {
            ldap,
            _driver: AbortOnDrop(driver.abort_handle()),
        })
    }
}

/// Up to `size` connections bound as the service account (or anonymous).
pub(super) struct Pool {
    idle: Mutex<Vec<Conn>>,
    permits: Semaphore,
    service: Option<(String, String)>,
}

/// A connection taken from the pool: back into it by [`Pooled::release`]
/// once a login is done with it; dropped otherwise (an error, or the
/// login's timeout cutting an operation halfway: its state is not known),
/// which closes it.
pub(super) struct Pooled<'a> {
    conn: Option<Conn>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
    // (Dropping `conn` without `release` closes it.)
    /// Whether it served an earlier login (and so may have been closed by
    /// the directory meanwhile).
    pub reused: bool,
}

impl Pool {
    pub fn new(size: usize, service: Option<(String, String)>) -> Pool {
        Pool {
            idle: Mutex::default(),
            permits: Semaphore::new(size),
            service,
        }
    }

    /// A connection, idle or new; waits while `size` are in use (the
    /// login's timeout bounds the wait).
    pub async fn get<'a>(&'a self, connector: &Connector) -> Result<Pooled<'a>, String> {
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| format!("the connection pool: {e}"))?;
        let idle = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            // One the directory closed is of no use.
            while idle.last_mut().is_some_and(|c| c.ldap.is_closed()) {
                idle.pop();
            }
            idle.pop()
        };
        let (conn, reused) = match idle {
            Some(conn) => (conn, true),
            None => (self.fresh(connector).await?, false),
        };
        Ok(Pooled {
            conn: Some(conn),
            pool: self,
            _permit: permit,
            reused,
        })
    }

    /// A new connection, bound as the service account.
    async fn fresh(&self, connector: &Connector) -> Result<Conn, String> {
        let mut conn = connector
            .open()
            .await
            .map_err(|e| format!("connect: {e}"))?;
        if let Some((dn, password)) = &self.service {
            conn.ldap
                .simple_bind(dn, password)
                .await
                .and_then(|r| r.success())
                .map_err(|e| format!("bind as service_dn: {e}"))?;
        }
        Ok(conn)
    }
}

impl Pooled<'_> {
    pub fn ldap(&mut self) -> &mut Ldap {
        &mut self.conn.as_mut().expect("taken only by release").ldap
    }

    /// Back into the pool for the next login.
    pub fn release(mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(conn);
        }
    }
}
