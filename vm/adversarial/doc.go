// Package adversarial is the standing adversarial benchmark of the VM: it
// times hostile workloads through the path an attacker uses against the gas
// they are charged (the pricing goal is 1 Mgas ≈ 1 ms, every shape within
// 0.5–2 ns per gas). It has no code outside its tests; upload_test.go holds
// the upload, compilation and module-load shapes:
//
//	go test ./vm/adversarial -run '^$' -bench AdversarialUpload -benchtime 2x -count 3
package adversarial
