package main

import "fmt"

func main() {
	fmt.Println("Operação sensível concluída com sucesso! Gerando trilha de auditoria.")
}
