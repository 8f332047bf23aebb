//! logpipe operator: reconciles `LogPipeline` resources (fetch -> validate -> build -> apply -> status).
