//! `wt-session`'s traits for establishing sessions, implemented by [`Client`] ([`Connect`]),
//! [`Server`] ([`Accept`]) and [`Request`] ([`SessionRequest`]), so that code generic over the
//! backend (the `wt` tool, the conformance suite) runs on this one.

use http::StatusCode;
use wt_session::{Accept, Connect, SessionError, SessionRequest};

use crate::endpoint::client::Client;
use crate::endpoint::server::Server;
use crate::error::ConnectError;
use crate::request::Request;
use crate::session::Session;

impl Connect for Client {
    type Session = Session;
    type Error = ConnectError;

    async fn connect(&self, url: &str) -> Result<Session, ConnectError> {
        Client::connect(self, url).await
    }
}

impl Accept for Server {
    type Request = Request;

    async fn accept(&self) -> Option<Request> {
        Server::accept(self).await
    }
}

impl SessionRequest for Request {
    type Session = Session;

    fn path(&self) -> &str {
        self.head().path()
    }

    fn origin(&self) -> Option<&str> {
        self.head().origin()
    }

    async fn accept(self) -> Result<Session, SessionError> {
        Request::accept(self).await
    }

    async fn reject(self, status: u16) {
        // A status that does not refuse is refused as if dropped, as the trait says.
        match StatusCode::from_u16(status) {
            Ok(status) => {
                let _ = Request::reject(self, status).await;
            }
            Err(_) => drop(self),
        }
    }
}
