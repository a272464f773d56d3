extension NginxRender {
    /// Debian's libjs-chart.js (Chart.js 3), which the dashboard loads from
    /// `/ui/lib/chart.js/`: a maintained copy the system updates, none in the repo.
    public static let chartJSDirectory = "/usr/share/javascript/chart.js"

    /// The dashboard's locations in control-center.conf: the static files of
    /// CC_WEB_DIR under `/ui/`, Debian's Chart.js under `/ui/lib/chart.js/`,
    /// and `/` sending browsers (an Accept with text/html) to `/ui/` while
    /// API clients keep the JSON index. nginx sends the files itself, with an
    /// ETag and `Cache-Control: no-cache` (a changed file is fetched at once)
    /// and the page's CSP (control-center-ui-headers.conf).
    var dashboardLocations: String {
        let headers = "include \(path("control-center-ui-headers.conf"));"
        return """
            # The dashboard (CC_WEB_DIR), sent by nginx itself; no worker is involved.
            location = /ui {
                return 301 /ui/;
            }
            location /ui/ {
                alias \(config.nginx.webDir)/;
                index index.html;
                # Module scripts need a JavaScript type; the operator's nginx may have no mime.types.
                types {
                    text/html html;
                    text/css css;
                    text/javascript js;
                    image/svg+xml svg;
                }
                gzip_types text/css text/javascript image/svg+xml;
                etag on;
                \(headers)
                location /ui/lib/chart.js/ {
                    alias \(Self.chartJSDirectory)/;
                    \(headers)
                }
            }
            # Browsers asking for / get the dashboard; API clients the JSON index.
            location = / {
                if ($cc_wants_html) {
                    return 302 /ui/;
                }
                add_header Vary Accept always;
                include \(path("control-center-headers.conf"));
                fastcgi_pass cc_main;
            }
            """
    }
}
