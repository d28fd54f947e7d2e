# bench/peer-configs.sh: HAProxy's and nginx's configurations for the benchmarks, sourced by
# bench/compare.sh and bench/ir-per-request.sh so that both measure the peers set up the same
# way (bench/README.md, "Configuration mapping", says how they match Ballast's).
#
#   haproxy_config DIR PORT THREADS BACKEND...   prints haproxy.cfg
#   nginx_config DIR PORT THREADS BACKEND...     prints nginx.conf (temp files under DIR/nginx-tmp)

haproxy_config() {
    local dir=$1 port=$2 threads=$3 i=0 b
    shift 3
    cat <<EOF
global
    nbthread $threads
    maxconn 8192
    pidfile $dir/haproxy.pid
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option http-keep-alive
    option forwardfor
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    timeout http-keep-alive 30s
    timeout check 1s
    retries 3
    option redispatch

frontend web
    bind 127.0.0.1:$port
    default_backend app

backend app
    balance roundrobin
    http-reuse always
    option httpchk GET /healthz
    default-server check inter 2s rise 2 fall 3
EOF
    for b in "$@"; do
        i=$((i + 1))
        echo "    server s$i $b"
    done
}

nginx_config() {
    local dir=$1 port=$2 threads=$3 b servers=
    shift 3
    for b in "$@"; do
        servers+="        server $b max_fails=3 fail_timeout=2s;
"
    done
    mkdir -p "$dir/nginx-tmp"
    cat <<EOF
worker_processes $threads;
user nobody nogroup;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 8192; }
http {
    default_type text/plain;
    access_log $dir/nginx-access.log combined;
    keepalive_requests 1000000;
    keepalive_timeout 30s;
    client_body_temp_path $dir/nginx-tmp/body;
    proxy_temp_path $dir/nginx-tmp/proxy;
    fastcgi_temp_path $dir/nginx-tmp/fastcgi;
    uwsgi_temp_path $dir/nginx-tmp/uwsgi;
    scgi_temp_path $dir/nginx-tmp/scgi;

    # Open-source nginx has passive health checks only: a server that fails 3 times is
    # skipped for 2 s. There is no active probe of /healthz.
    upstream app {
$servers        keepalive 64;
        keepalive_requests 1000000;
        keepalive_timeout 60s;
    }
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host \$host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_connect_timeout 1s;
            proxy_next_upstream error timeout;
            proxy_next_upstream_tries 3;
        }
    }
}
EOF
}
