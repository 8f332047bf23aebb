//! logpipe's data plane.
//!
//! The agent is source -> pipeline -> sink: [`tailer`] finds and reads files (a library that knows nothing of what
//! happens to its lines), [`parse`] and [`encode`] turn lines into records and documents, [`sink`] delivers them,
//! and [`checkpoint`] remembers what was delivered. [`agent`] wires them together.

pub mod agent;
pub mod checkpoint;
pub mod encode;
pub mod frame;
pub mod indexer;
pub mod librdkafka;
pub mod metadata;
pub mod parse;
pub mod sink;
pub mod tailer;

pub use logpipe_config as config;
pub use logpipe_http as http;
