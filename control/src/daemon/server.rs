//! The control socket server: reads one JSON request per connection, has it carried out and
//! writes the JSON response back.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::sync::atomic::Ordering;

use super::edit::handle;
use super::Live;
use crate::ctl::{Request, Response};

/// Serves control requests until the stop flag is set.
pub(super) fn serve(live: &Live, listener: &UnixListener) {
    for conn in listener.incoming() {
        if live.stop.load(Ordering::Relaxed) {
            return;
        }
        let Ok(mut conn) = conn else { continue };
        let mut line = String::new();
        let response = match BufReader::new(&conn).read_line(&mut line) {
            Ok(_) => match serde_json::from_str::<Request>(&line) {
                Ok(req) => handle(live, req),
                Err(e) => Response {
                    ok: false,
                    text: format!("not a valid request: {e}"),
                },
            },
            Err(e) => Response {
                ok: false,
                text: format!("cannot read the request: {e}"),
            },
        };
        if let Ok(body) = serde_json::to_vec(&response) {
            // A client that went away misses its answer; the server carries on.
            let _client_gone = conn.write_all(&body);
        }
    }
}
