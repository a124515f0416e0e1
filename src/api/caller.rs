//! Who is calling, resolved once per call: the [`ViewerLayer`] turns the authenticated [`Principal`] into the
//! [`Viewer`] every handler reads (staff see everything; a customer sees through its portal). Resolving it in
//! front of every route, rather than in the handlers that happen to need it, is what makes "a customer whose
//! portal was deleted is refused everything" true of every method, present and future.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, LazyLock},
    task::{Context, Poll},
};

use crate::{
    auth::{Principal, Role},
    domain::{Error, access::Viewer},
    store::Store,
};

/// Every staff call shares one viewer: the hot path costs a reference count, not an allocation.
static STAFF: LazyLock<Arc<Viewer>> = LazyLock::new(|| Arc::new(Viewer::Staff));

/// Resolves the caller's [`Viewer`] and puts it in the request's extensions; sits behind the auth layer.
#[derive(Clone)]
pub struct ViewerLayer {
    store: Store,
}

impl ViewerLayer {
    /// A layer resolving customers' views from `store`.
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

impl<S> tower_layer::Layer<S> for ViewerLayer {
    type Service = ResolveViewer<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ResolveViewer {
            inner,
            store: self.store.clone(),
        }
    }
}

/// The service [`ViewerLayer`] wraps around the routes.
#[derive(Clone)]
pub struct ResolveViewer<S> {
    inner: S,
    store: Store,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B> tower_service::Service<http::Request<B>> for ResolveViewer<S>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Calls the auth layer lets through without credentials (health, reflection) have no principal.
        let Some(caller) = request.extensions().get::<Principal>() else {
            return Box::pin(self.inner.call(request));
        };
        if caller.role != Role::Customer {
            request.extensions_mut().insert(Arc::clone(&STAFF));
            return Box::pin(self.inner.call(request));
        }
        let caller = caller.clone();
        let store = self.store.clone();
        // The service that was polled ready is the one to call; a fresh clone takes its place.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            match customer_viewer(&store, &caller).await {
                Ok(viewer) => {
                    request.extensions_mut().insert(Arc::new(viewer));
                    inner.call(request).await
                }
                Err(error) => Ok(tonic::Status::from(error).into_http()),
            }
        })
    }
}

/// A customer's view through its portal (PERMISSION_DENIED when the token names no portal or one that no
/// longer exists).
async fn customer_viewer(store: &Store, caller: &Principal) -> Result<Viewer, Error> {
    let portal = caller
        .portal
        .ok_or_else(|| Error::denied("portal", "customer credentials name no portal"))?;
    let view = store.customer_view(&caller.id, &caller.org, portal).await?;
    Ok(Viewer::Customer(Box::new(view)))
}

/// The caller's view, put in the extensions by [`ViewerLayer`].
pub(crate) fn viewer(extensions: &tonic::Extensions) -> Result<Arc<Viewer>, Error> {
    extensions
        .get::<Arc<Viewer>>()
        .cloned()
        // Unreachable behind the viewer layer, which every ticketd route sits behind.
        .ok_or_else(|| Error::internal("a call reached a handler without passing the viewer layer"))
}
