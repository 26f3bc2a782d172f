// npm postinstall of infra/package.json. node_modules sits inside the infra Go module, and the CDK CLI ships
// Go templates for `cdk init` (invalid Go: `%name%.template.go`), which `go vet ./...`, `go test ./...` and
// `gofmt -l .` would pick up. This marks node_modules as a module of its own (so `./...` skips it) and removes
// the Go init templates (this repository never runs `cdk init`).
const fs = require('fs');
const path = require('path');

fs.writeFileSync(path.join('node_modules', 'go.mod'), 'module ignore/node_modules\n');
const templates = path.join('node_modules', 'aws-cdk', 'lib', 'init-templates');
for (const kind of fs.existsSync(templates) ? fs.readdirSync(templates) : []) {
  fs.rmSync(path.join(templates, kind, 'go'), { recursive: true, force: true });
}
