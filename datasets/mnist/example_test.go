package mnist_test

import (
	"fmt"

	"github.com/dpopt/dpopt/datasets/mnist"
)

func ExampleLoad() {
	d, err := mnist.Load()
	if err != nil {
		fmt.Println(err) // the GoMNIST module is not in the module cache
		return
	}
	fmt.Println(d.Train.X.Rows, d.Validation.X.Rows, d.Test.X.Rows, d.Train.X.Cols)
}
