#!/usr/bin/env bash
# A throwaway OpenLDAP directory for the LDAP tests, in the foreground:
#
#   tests/ldap/slapd.sh DIR LDAP_PORT LDAPS_PORT
#
# Writes into DIR a test CA and a server certificate for 127.0.0.1/localhost (DIR/ca.pem is the
# CA for amphi's ldap.ca_file), slapd.conf, and the tree of tree.ldif (people, a service
# account) plus groups.ldif, added through slapd so the memberof overlay fills memberOf; then
# replaces itself with slapd serving ldap:// (StartTLS too) and ldaps:// on 127.0.0.1.
# The caller stops it with SIGTERM. Needs: apt-get install slapd ldap-utils openssl.
set -euo pipefail
DIR="$1"; PORT="$2"; TLS_PORT="$3"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"
mkdir -p "$DIR/db"
cd "$DIR"

if [ ! -f server.pem ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=amphi-test-ca \
        -keyout ca.key -out ca.pem 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -subj /CN=localhost -keyout server.key -out server.csr 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' > ext.cnf
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out server.pem 2>/dev/null
fi

cat > slapd.conf <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $DIR/slapd.pid
argsfile $DIR/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
moduleload memberof
TLSCACertificateFile $DIR/ca.pem
TLSCertificateFile $DIR/server.pem
TLSCertificateKeyFile $DIR/server.key
# A DN with an empty password binds (anonymously): amphi must refuse empty passwords itself.
allow bind_anon_dn
database mdb
maxsize 16777216
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
rootpw admin-secret
directory $DIR/db
overlay memberof
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
CONF

if [ ! -f db/data.mdb ]; then
    slapadd -q -f slapd.conf -l "$HERE/tree.ldif"
    # Groups go through a running slapd so the memberof overlay writes memberOf.
    URI="ldapi://$(printf %s "$DIR/setup.sock" | sed 's,/,%2F,g')"
    ADMIN=(-x -D cn=admin,dc=example,dc=org -w admin-secret -H "$URI")
    slapd -f slapd.conf -h "$URI" -d 0 &
    SETUP_PID=$!
    trap 'kill "$SETUP_PID" 2>/dev/null || true' EXIT
    trap 'exit 1' INT TERM
    for _ in $(seq 200); do ldapwhoami "${ADMIN[@]}" >/dev/null 2>&1 && break; sleep 0.05; done
    ldapadd "${ADMIN[@]}" -f "$HERE/groups.ldif" >/dev/null
    kill "$SETUP_PID"
    wait "$SETUP_PID" 2>/dev/null || true
    trap - EXIT INT TERM
fi

exec slapd -d 0 -f slapd.conf -h "ldap://127.0.0.1:$PORT/ ldaps://127.0.0.1:$TLS_PORT/"
