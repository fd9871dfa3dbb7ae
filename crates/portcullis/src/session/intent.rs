//! An upload's intent (`[events] spool_dir`, see `events::spool`):
//! journalled by the hooks just before the storage's commit, so that a
//! crash between the commit and the event's journal cannot lose the
//! upload event. The transfer's event, which follows whatever the
//! outcome, turns it into the event or removes it. Only wrapped when a
//! hook with a spool hears uploads: otherwise an upload costs no file
//! operation.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use tokio::io::AsyncWrite;

use crate::events::hooks::Hooks;
use crate::events::Origin;
use crate::storage::{Budget, Upload};

/// An upload whose commit is preceded by its intent.
pub(super) struct IntentUpload {
    inner: Box<dyn Upload>,
    hooks: Arc<Hooks>,
    origin: Origin,
    user: String,
    path: String,
}

impl IntentUpload {
    pub(super) fn wrap(
        inner: Box<dyn Upload>,
        hooks: Arc<Hooks>,
        origin: Origin,
        user: String,
        path: String,
    ) -> Box<dyn Upload> {
        Box::new(IntentUpload {
            inner,
            hooks,
            origin,
            user,
            path,
        })
    }
}

impl AsyncWrite for IntentUpload {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Upload for IntentUpload {
    async fn commit(self: Box<Self>) -> crate::storage::Result<()> {
        let IntentUpload {
            inner,
            hooks,
            origin,
            user,
            path,
        } = *self;
        hooks.intend(&origin, &user, &path);
        inner.commit().await
    }

    async fn abort(self: Box<Self>) -> crate::storage::Result<()> {
        self.inner.abort().await
    }

    async fn write_owned(&mut self, buf: Vec<u8>) -> std::io::Result<Vec<u8>> {
        self.inner.write_owned(buf).await
    }

    fn has_direct_file(&self) -> bool {
        self.inner.has_direct_file()
    }

    fn direct_file(&mut self) -> Option<std::fs::File> {
        self.inner.direct_file()
    }

    fn digest(&self) -> Option<Arc<std::sync::OnceLock<String>>> {
        self.inner.digest()
    }

    fn budget(&self) -> Option<Arc<dyn Budget>> {
        self.inner.budget()
    }
}
