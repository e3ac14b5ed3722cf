//! Pure logic of ngx_http_docker_stream_module, free of nginx types so that it has plain
//! unit tests and fuzz targets.

pub mod content_type;
pub mod duration;
pub mod gojson;
pub mod guards;
pub mod hex;
pub mod operation;
pub mod rules;
pub mod splice_mode;
