# The Makefile rules for `config`: cargo builds the static library (it tracks the Rust
# sources itself, so make always asks it), and the dynamic module is linked from it.

ngx_docker_stream_dir=$(cd "$ngx_addon_dir" && pwd)
ngx_docker_stream_objs=$(cd "$NGX_OBJS" && pwd)

cat << END                                                  >> $NGX_MAKEFILE

$ngx_docker_stream_lib: .NGX_DOCKER_STREAM_ALWAYS
	NGINX_BUILD_DIR=$ngx_docker_stream_objs \\
	NGINX_SOURCE_DIR=$(pwd) \\
	\$\${NGX_CARGO:-cargo} rustc --release --lib --crate-type staticlib \\
		--no-default-features --locked \\
		--manifest-path $ngx_docker_stream_dir/Cargo.toml \\
		--target-dir $ngx_docker_stream_objs/ngx_http_docker_stream_module

.NGX_DOCKER_STREAM_ALWAYS: ;

$NGX_OBJS${ngx_dirsep:-/}ngx_http_docker_stream_module${ngx_modext:-.so}: $ngx_docker_stream_lib

END
