//! Hostile input never panics the server: every request gets an answer (a panic in a handler
//! would drop the connection, which `get`/`post` report as a failure).

mod common;

use common::{Client, small, start};

#[test]
fn odd_requests_get_answers_not_panics() {
    let fake = start(small(&[
        ("customers", 20),
        ("subscriptions", 3),
        ("invoices", 3),
    ]));
    let client = Client::new(&fake);
    let paths = [
        "/v1/customers?limit=99999999999999999999999",
        "/v1/customers?limit=",
        "/v1/customers?created[gt]=9223372036854775807&created[lt]=-9223372036854775808",
        "/v1/customers?created=1&created=2",
        "/v1/customers?created[]=1",
        "/v1/customers?%ff%fe=%00&limit=%31",
        "/v1/customers?starting_after=&ending_before=",
        "/v1/customers?starting_after=%E2%98%83",
        "/v1/customers/%E2%98%83",
        "/v1/customers//",
        "/v1/",
        "/",
        "/v1/events?type=&types[]=",
        "/v1/events?types[99999999999999999999]=x",
        "/v1/invoices/in_x/lines?limit=0",
        "/v1/subscription_items?subscription=",
        "/v2/core/accounts?page=zz",
        "/v2/core/accounts?page=6e3a313a323a3939",
        "/v2/core/accounts?limit=-1",
        "/v1/checkout/sessions/cs_x/line_items?ending_before=x",
    ];
    for path in paths {
        let r = client.get(path);
        assert!(r.status < 500, "{path}: {}", r.status);
        r.json();
    }
    let bodies = [
        "",
        "=",
        "&&&",
        "name",
        "metadata[=x",
        "metadata]]=x",
        "a[b][c][d][e][f][g][h][i][j]=deep",
        "items[0][price]=&items[x][quantity]=2",
        "items=notalist",
        "items[0]=string",
        "balance=1e99",
        "address=flat&address[city]=x",
        "%ff=%fe",
        "metadata[k]=v&metadata=",
        "id=",
        "expand[]=everything",
    ];
    for body in bodies {
        for path in ["/v1/customers", "/v1/subscriptions", "/v1/invoices"] {
            let r = client.post(path, body);
            assert!(r.status < 500, "POST {path} {body}: {}", r.status);
            r.json();
        }
    }
    for auth in ["Bearer", "Basic", "Basic =", "Basic YQ", "Bearer  ", "☃"] {
        let r = Client::new(&fake)
            .key(None)
            .header("authorization", auth)
            .try_request("GET", "/v1/customers", None);
        match r {
            Ok(r) => assert_eq!(r.status, 401, "{auth}"),
            // Only a header value HTTP cannot carry may fail before it is sent.
            Err(e) => assert!(!auth.is_ascii(), "{auth}: {e}"),
        }
    }
    assert_eq!(fake.stats().by_status.get(&500), None);
}
