# nginx for the "scale" profile of docker-compose.yml: Debian's nginx package on the same
# base image as the service, so it builds wherever python:3.11-slim can be pulled (no
# other image needed). The site config is mounted from deploy/nginx.conf at
# /etc/nginx/conf.d/default.conf; the official nginx image can replace this one unchanged.
FROM python:3.11-slim

# Debian stable's nginx with its security updates, hence no version pin.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log \
 && nginx -v

EXPOSE 8080
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
